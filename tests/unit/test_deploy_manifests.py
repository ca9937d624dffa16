"""deploy/k8s: every manifest against the Kubernetes JSON schemas (kubernetes-validate, strict: an unknown or
misspelt field fails), and against the app: probe paths and ports are the worker's own views and web port,
every BURNGUARD_* name is a setting and the values load, Secret keys and ConfigMaps referenced exist, the
budgets/policy/approvers in the ConfigMap load with the worker's loaders, resources are requested, and the
KEDA example scales the worker's consumer group within its partitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from guardrails.approvers import Approvers
from guardrails.budget_book import BudgetBook
from guardrails.policy.model import load_policy
from streams.settings import USAGE_TOPICS, Settings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> resource, for every file kustomization.yaml lists."""
    kust = docs(K8S / "kustomization.yaml")[0]
    out = {}
    for name in kust["resources"]:
        for d in docs(K8S / name):
            out[(d["kind"], d["metadata"]["name"])] = d
    return out


RES = resources()
DEPLOY = RES[("Deployment", "burnguard-worker")]
POD = DEPLOY["spec"]["template"]
CONTAINER = POD["spec"]["containers"][0]
SETTINGS_MAP = RES[("ConfigMap", "burnguard-settings")]["data"]
SECRET = RES[("Secret", "burnguard-secrets")]


@pytest.mark.parametrize("path", sorted(p.relative_to(K8S).as_posix() for p in K8S.rglob("*.yaml")))
def test_each_manifest_is_valid_against_the_kubernetes_schemas(path: str) -> None:
    for d in docs(K8S / path):
        if d["kind"] == "Kustomization" or "keda.sh" in d["apiVersion"]:
            continue  # not in the Kubernetes schemas (the KEDA example is checked below)
        kubernetes_validate.validate(d, kubernetes_validate.latest_version(), strict=True)


def test_kustomization_lists_every_core_manifest() -> None:
    listed = set(docs(K8S / "kustomization.yaml")[0]["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_probes_and_scrape_annotations_point_at_the_workers_own_views_and_port() -> None:
    import streams.app  # noqa: F401 - registers every view
    from streams.topology import app

    ports = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}
    web_port = int(SETTINGS_MAP["BURNGUARD_WEB_PORT"])
    assert ports == {"http": web_port}
    probes = {k: CONTAINER[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/health" and probes["readinessProbe"]["path"] == "/ready"
    for probe in probes.values():
        assert probe["path"] in app.web.views and ports[probe["port"]] == web_port
    notes = POD["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true" and int(notes["prometheus.io/port"]) == web_port
    assert notes["prometheus.io/path"] == "/metrics" and "/metrics" in app.web.views


def env_names() -> set[str]:
    return set(SETTINGS_MAP) | {e["name"] for e in CONTAINER["env"]}


def test_every_burnguard_name_is_a_setting_and_the_values_load(monkeypatch, tmp_path) -> None:
    fields = {f"BURNGUARD_{name.upper()}" for name in Settings.model_fields}
    ours = {n for n in env_names() if n.startswith("BURNGUARD_")}
    assert ours - fields == set()
    assert {"BURNGUARD_DATABASE_URL", "BURNGUARD_SLACK_TOKEN", "BURNGUARD_SLACK_SIGNING_SECRET"} <= ours
    monkeypatch.chdir(tmp_path)  # no .env
    for name in fields:
        monkeypatch.delenv(name, raising=False)
    for name, value in SETTINGS_MAP.items():
        monkeypatch.setenv(name, value)
    for e in CONTAINER["env"]:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        monkeypatch.setenv(e["name"], SECRET["stringData"][ref["key"]] if ref else e["value"])
    s = Settings()
    assert s.app_id == "burnguard" and s.partitions >= DEPLOY["spec"]["replicas"]
    assert s.bootstrap_servers.count(",") == 2 and s.database_url.startswith("postgresql+psycopg://")
    assert s.slack_token is not None and s.policy == "/etc/burnguard/policy.yaml"


def test_every_secret_and_configmap_referenced_exists() -> None:
    for e in CONTAINER["env"]:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ("Secret", ref["name"]) in RES and ref["key"] in RES[("Secret", ref["name"])]["stringData"]
    for src in CONTAINER["envFrom"]:
        assert ("ConfigMap", src["configMapRef"]["name"]) in RES
    mounts = {m["name"]: m["mountPath"] for m in CONTAINER["volumeMounts"]}
    for v in POD["spec"]["volumes"]:
        assert v["name"] in mounts
        if "configMap" in v:
            assert ("ConfigMap", v["configMap"]["name"]) in RES
    assert mounts["data"] == SETTINGS_MAP["BURNGUARD_DATA_DIR"]  # Faust's tables are written under a volume


def test_the_configmaps_budgets_policy_and_approvers_load_with_the_workers_loaders(tmp_path) -> None:
    files = RES[("ConfigMap", "burnguard-policy")]["data"]
    mount = next(m["mountPath"] for m in CONTAINER["volumeMounts"] if m["name"] == "policy")
    for setting, name in (("BURNGUARD_BUDGETS", "budgets.yaml"), ("BURNGUARD_POLICY", "policy.yaml"),
                          ("BURNGUARD_APPROVERS", "approvers.yaml")):
        assert SETTINGS_MAP[setting] == f"{mount}/{name}"
        (tmp_path / name).write_text(files[name])
    book = BudgetBook.load(tmp_path / "budgets.yaml")
    approvers = Approvers.load(tmp_path / "approvers.yaml")
    policy = load_policy(tmp_path / "policy.yaml", groups=approvers.names())
    assert len(book) == 3 and policy.rules[-1].default


def test_resources_requested_labels_match_and_the_service_reaches_the_http_port() -> None:
    res = CONTAINER["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"] == res["limits"]["memory"]
    labels = POD["metadata"]["labels"]
    for selector in (DEPLOY["spec"]["selector"]["matchLabels"], RES[("Service", "burnguard")]["spec"]["selector"],
                     RES[("PodDisruptionBudget", "burnguard-worker")]["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= labels.items()
    assert RES[("Service", "burnguard")]["spec"]["ports"][0]["targetPort"] == "http"


def test_the_keda_example_scales_the_workers_group_within_its_partitions() -> None:
    (scaled,) = docs(K8S / "optional" / "keda-scaledobject.yaml")
    assert scaled["spec"]["scaleTargetRef"]["name"] == DEPLOY["metadata"]["name"]
    (trigger,) = scaled["spec"]["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka" and meta["consumerGroup"] == SETTINGS_MAP["BURNGUARD_APP_ID"]
    assert meta["topic"] in USAGE_TOPICS.values() and int(meta["lagThreshold"]) > 0
    broker = SETTINGS_MAP["BURNGUARD_BROKER"].removeprefix("kafka://").replace(";", ",")
    assert meta["bootstrapServers"] == broker
    assert scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= int(
        SETTINGS_MAP["BURNGUARD_PARTITIONS"])
