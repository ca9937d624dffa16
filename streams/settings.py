"""Service configuration, from ``BURNGUARD_*`` environment variables (pydantic-settings).

>>> s = Settings(_env_file=None, broker="kafka://k1:9092")
>>> s.bootstrap_servers, s.bucket_seconds
('k1:9092', 60)
"""

from __future__ import annotations

import ssl
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.bucket import METRICS
from schemas.cardinality import DEFAULT_LIMITS as DEFAULT_CARDINALITY

#: Topics the service reads and writes, created by ``burnguard broker`` and the demo.
USAGE_TOPICS: dict[str, str] = {"llm": "usage.llm", "gpu": "usage.gpu", "billing": "usage.billing"}
DEADLETTER_TOPIC = "usage.deadletter"
COSTS_TOPIC = "costs"
BUCKETS_TOPIC = "buckets"
GPU_SAMPLES_TOPIC = "gpu.samples"
#: Keyed by served model: gateway request counts (from normalize) and serving GPUs' idle status (from zombies).
MODEL_ACTIVITY_TOPIC = "model.activity"
BUDGET_SPEND_TOPIC = "budget.spend"
ALERTS_TOPIC = "alerts"
#: Overruns a policy decides on (keyed by budget id), and the decisions gateways may enforce.
OVERRUNS_TOPIC = "guardrail.overruns"
DECISIONS_TOPIC = "guardrail.decisions"
#: Anomaly alerts with a $ impact, keyed by the budget they speak for (co-partitioned with budget.spend).
ANOMALIES_TOPIC = "guardrail.anomalies"
ALL_TOPICS: tuple[str, ...] = (*USAGE_TOPICS.values(), DEADLETTER_TOPIC, COSTS_TOPIC, BUCKETS_TOPIC,
                                   GPU_SAMPLES_TOPIC, MODEL_ACTIVITY_TOPIC, BUDGET_SPEND_TOPIC, ALERTS_TOPIC,
                                   OVERRUNS_TOPIC, DECISIONS_TOPIC, ANOMALIES_TOPIC)


class Settings(BaseSettings):
    """Every setting has a sensible default; see the README's configuration table."""

    # hide_input_in_errors: a bad setting's error must not echo the database URL or a password
    model_config = SettingsConfigDict(env_prefix="BURNGUARD_", env_file=".env", extra="ignore",
                                      hide_input_in_errors=True)

    broker: str | None = Field(None, description="kafka://host:port[;host:port]; unset = embedded broker")
    database_url: str = Field("sqlite:///burnguard.db", repr=False,
                              description="SQLAlchemy URL of the store; a secret (may hold a password): "
                                          "kept out of reprs, logged only as database_url_for_logs")
    app_id: str = Field("burnguard", description="Faust app id = consumer group")
    partitions: int = Field(4, ge=1, description="partitions of the topics burnguard creates")
    web_port: int = Field(6066, ge=1, le=65535, description="Faust web server port (health, Slack callbacks)")
    table_store: Literal["memory://", "rocksdb://"] = Field(
        "memory://", description="where the worker keeps its tables: memory:// (in the process, rebuilt from the "
                                 "changelogs at start) or rocksdb:// (on disk under data_dir, via rocksdict: state "
                                 "may exceed RAM and a restart reads only the changelog written since)")
    data_dir: str = Field("burnguard-data", description="Faust's data directory (RocksDB tables under "
                                                        "DATA_DIR/v1/tables); relative to the working directory")
    bucket_seconds: int = Field(60, ge=1, description="event-time bucket width")
    allowed_lateness_seconds: int = Field(60, ge=0, description="how long a bucket waits for late events")
    idle_flush_seconds: float = Field(
        120.0, gt=0, description="close a partition's buckets after this long without records; keep it at least "
                                 "bucket + lateness for live traffic, or a slow minute closes before it is full")
    detector: str | None = Field(None, description="detector name (burnguard detect list); unset = default")
    alert_threshold: float = Field(0.9999, gt=0, lt=1, description="score at which an incident opens")
    alert_min_ratio: float = Field(1.5, ge=1.0, description="an incident also needs observed >= this x baseline")
    early_firing: bool = Field(
        False, description="score a key's open minute of spend as it fills and open the incident as soon as the "
                           "spend so far opens one at once (spend only grows, so the closed minute scores at least "
                           "as high; it confirms the incident or resolves it), instead of waiting for the minute "
                           "to close")
    metrics: list[str] = Field(list(METRICS), description="metrics scored per key (JSON list)")
    rollups: list[list[str]] = Field([["team", "environment"], ["environment"]],
                                     description="roll-up levels scored besides full keys (JSON list of field lists)")
    root_cause_top: int = Field(3, ge=1, description="contributors named on a roll-up alert")
    min_requests_per_bucket: int = Field(3, ge=1, description="cost per inference needs this many calls in a bucket")
    cardinality_limits: dict[str, int] = Field(
        dict(DEFAULT_CARDINALITY), description="distinct values per key dimension (per team; team: in all); beyond "
                                               "it the value becomes 'other' (JSON object)")
    max_gpus_per_allocation: int = Field(64, ge=1, description="GPUs tracked per pod or host allocation; samples "
                                         "of further GPUs are counted as refused (bounds a hostile envelope)")
    key_ttl_seconds: float = Field(14 * 86400, gt=0, description="a key's state (open buckets, detector monitors, a "
                                    "GPU allocation's tracker) is dropped after this long without records (wall time)")
    price_catalog: str | None = Field(None, description="price catalog YAML; unset = the shipped prices.yaml")
    allocation_rules: str | None = Field(None, description="allocation rules YAML; unset = the shipped allocation.yaml")
    budgets: str | None = Field(None, description="budgets YAML; unset = the shipped guardrails/budgets.yaml")
    policy: str | None = Field(None, description="guardrail policy YAML; unset = the shipped guardrails/policy.yaml")
    approvers: str | None = Field(None, description="approver groups YAML; unset = the shipped guardrails/approvers.yaml")
    slack_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str | None = Field(None, description="Slack Web API base URL (slack-sdk base_url, ending in /); "
                                                        "unset = https://slack.com/api/")
    slack_default_channel: str | None = Field(None, description="channel (id or #name) for incidents no route matches")
    slack_routing: str | None = Field(None, description="Slack routing YAML (team/severity -> channel); unset = "
                                                        "everything to the default channel")
    runbook_url: str | None = Field(None, description="runbook link shown on every incident message")
    incident_group_by: list[str] = Field(["team", "feature"], description="allocation fields that group alerts "
                                                                          "into one incident (JSON list)")
    incident_group_wait_seconds: float = Field(120.0, ge=0, description="event time a new incident waits for its "
                                                                        "roll-ups and sibling alerts before posting")
    incident_group_interval_seconds: float = Field(300.0, gt=0, description="event time between announcements of "
                                                                            "alerts joining an incident")
    incident_repeat_interval_seconds: float = Field(4 * 3600.0, gt=0, description="reminder of an unacknowledged "
                                                    "incident; a resolved one re-opens within it")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="how clients talk to Kafka: TLS with SSL/SASL_SSL, SASL auth with SASL_*")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism (SASL_PLAINTEXT, SASL_SSL)")
    kafka_sasl_username: str | None = Field(None, description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret)")
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle (PEM) to verify the brokers; unset = system CAs")
    kafka_ssl_certfile: str | None = Field(None, description="client certificate (PEM) for mutual TLS")
    kafka_ssl_keyfile: str | None = Field(None, description="client private key (PEM) for mutual TLS")
    kafka_ssl_key_password: SecretStr | None = Field(None, description="password of the client key (secret)")
    kafka_ssl_check_hostname: bool = Field(True, description="verify the broker's host name against its certificate")
    dead_letter_retention_days: float = Field(
        30, gt=0, description="dead letters older than this are purged from the store (prompt and response "
                              "fields are never stored)")

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, v: list[str]) -> list[str]:
        unknown = set(v) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metric(s) {sorted(unknown)}; known: {', '.join(METRICS)}")
        return v

    @model_validator(mode="after")
    def _kafka_auth_complete(self) -> "Settings":
        if self.kafka_security_protocol.startswith("SASL") and (
                not self.kafka_sasl_username or self.kafka_sasl_password is None):
            raise ValueError(f"BURNGUARD_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                             "BURNGUARD_KAFKA_SASL_USERNAME and BURNGUARD_KAFKA_SASL_PASSWORD")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("mutual TLS needs both BURNGUARD_KAFKA_SSL_CERTFILE and BURNGUARD_KAFKA_SSL_KEYFILE")
        return self

    @property
    def database_url_for_logs(self) -> str:
        """The database URL with its password hidden (``postgresql://u:***@host/db``)."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(self.database_url).render_as_string(hide_password=True)
        except ArgumentError:
            return "<unparsable database URL>"

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for the brokers (``None`` without TLS): system or given CAs, optional client cert."""
        if not self.kafka_uses_tls:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.kafka_ssl_cafile)
        ctx.check_hostname = self.kafka_ssl_check_hostname
        if self.kafka_ssl_certfile:
            password = self.kafka_ssl_key_password.get_secret_value() if self.kafka_ssl_key_password else None
            ctx.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile, password=password)
        return ctx

    def kafka_python_config(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python clients (``KafkaProducer``, ``KafkaAdminClient``).

        >>> Settings(_env_file=None).kafka_python_config()
        {'security_protocol': 'PLAINTEXT'}
        >>> sorted(Settings(_env_file=None, kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u",
        ...                 kafka_sasl_password="p").kafka_python_config())
        ['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol']
        """
        out: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL"):
            out.update(sasl_mechanism=self.kafka_sasl_mechanism, sasl_plain_username=self.kafka_sasl_username,
                       sasl_plain_password=self.kafka_sasl_password.get_secret_value()  # type: ignore[union-attr]
                       )
        if self.kafka_uses_tls:
            out["ssl_context"] = self.kafka_ssl_context()
        return out

    def faust_broker_credentials(self) -> Any:
        """``broker_credentials`` for the Faust app: ``None`` (plaintext), ``SSLCredentials`` or ``SASLCredentials``
        (over TLS when the protocol is SASL_SSL)."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return None
        from faust.auth import SASLCredentials, SSLCredentials

        ctx = self.kafka_ssl_context()
        if self.kafka_security_protocol == "SSL":
            return SSLCredentials(ctx)
        return SASLCredentials(username=self.kafka_sasl_username,
                               password=self.kafka_sasl_password.get_secret_value(),  # type: ignore[union-attr]
                               ssl_context=ctx, mechanism=self.kafka_sasl_mechanism)

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("kafka://"):
            raise ValueError("BURNGUARD_BROKER must look like kafka://host:9092")
        return v

    @property
    def bootstrap_servers(self) -> str:
        if self.broker is None:
            raise RuntimeError("no broker configured: set BURNGUARD_BROKER or start the embedded one")
        return self.broker.removeprefix("kafka://").replace(";", ",")
