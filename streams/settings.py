"""Service configuration, from ``BURNGUARD_*`` environment variables (pydantic-settings).

>>> s = Settings(_env_file=None, broker="kafka://k1:9092")
>>> s.bootstrap_servers, s.bucket_seconds
('k1:9092', 60)
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.bucket import METRICS

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
ALL_TOPICS: tuple[str, ...] = (*USAGE_TOPICS.values(), DEADLETTER_TOPIC, COSTS_TOPIC, BUCKETS_TOPIC,
                                   GPU_SAMPLES_TOPIC, MODEL_ACTIVITY_TOPIC, BUDGET_SPEND_TOPIC, ALERTS_TOPIC)


class Settings(BaseSettings):
    """Every setting has a sensible default; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="BURNGUARD_", env_file=".env", extra="ignore")

    broker: str | None = Field(None, description="kafka://host:port[;host:port]; unset = embedded broker")
    database_url: str = Field("sqlite:///burnguard.db", description="SQLAlchemy URL of the store")
    app_id: str = Field("burnguard", description="Faust app id = consumer group")
    partitions: int = Field(4, ge=1, description="partitions of the topics burnguard creates")
    web_port: int = Field(6066, ge=1, le=65535, description="Faust web server port (health, Slack callbacks)")
    bucket_seconds: int = Field(60, ge=1, description="event-time bucket width")
    allowed_lateness_seconds: int = Field(60, ge=0, description="how long a bucket waits for late events")
    idle_flush_seconds: float = Field(
        120.0, gt=0, description="close a partition's buckets after this long without records; keep it at least "
                                 "bucket + lateness for live traffic, or a slow minute closes before it is full")
    detector: str | None = Field(None, description="detector name (burnguard detect list); unset = default")
    alert_threshold: float = Field(0.9999, gt=0, lt=1, description="score at which an incident opens")
    alert_min_ratio: float = Field(1.5, ge=1.0, description="an incident also needs observed >= this x baseline")
    metrics: list[str] = Field(list(METRICS), description="metrics scored per key (JSON list)")
    rollups: list[list[str]] = Field([["team", "environment"], ["environment"]],
                                     description="roll-up levels scored besides full keys (JSON list of field lists)")
    root_cause_top: int = Field(3, ge=1, description="contributors named on a roll-up alert")
    min_requests_per_bucket: int = Field(3, ge=1, description="cost per inference needs this many calls in a bucket")
    price_catalog: str | None = Field(None, description="price catalog YAML; unset = the shipped prices.yaml")
    allocation_rules: str | None = Field(None, description="allocation rules YAML; unset = the shipped allocation.yaml")
    budgets: str | None = Field(None, description="budgets YAML; unset = the shipped guardrails/budgets.yaml")
    policy: str | None = Field(None, description="guardrail policy YAML; unset = the shipped guardrails/policy.yaml")
    approvers: str | None = Field(None, description="approver groups YAML; unset = the shipped guardrails/approvers.yaml")
    slack_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, v: list[str]) -> list[str]:
        unknown = set(v) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metric(s) {sorted(unknown)}; known: {', '.join(METRICS)}")
        return v

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
