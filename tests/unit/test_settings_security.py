"""Kafka SASL/TLS settings, and secrets (database URL, passwords) kept out of reprs, errors and logs (issue 9)."""

from __future__ import annotations

import ssl

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from pydantic import ValidationError

from streams.settings import Settings

URL = "postgresql+psycopg://burnguard:hunter2-secret@db.internal:5432/spend"


def test_database_url_and_passwords_never_appear_in_repr_or_str() -> None:
    s = Settings(_env_file=None, database_url=URL, kafka_security_protocol="SASL_PLAINTEXT",
                 kafka_sasl_username="svc", kafka_sasl_password="kafka-pass-1", slack_token="xoxb-1")
    for text in (repr(s), str(s)):
        assert "hunter2-secret" not in text and "kafka-pass-1" not in text and "xoxb-1" not in text
    assert s.database_url == URL  # still usable by the store
    assert s.database_url_for_logs == "postgresql+psycopg://burnguard:***@db.internal:5432/spend"


def test_a_bad_setting_does_not_echo_secrets_in_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BURNGUARD_DATABASE_URL", URL)
    monkeypatch.setenv("BURNGUARD_KAFKA_SASL_PASSWORD", "kafka-pass-1")
    monkeypatch.setenv("BURNGUARD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")  # no user name: refused at load
    with pytest.raises(ValidationError) as err:
        Settings(_env_file=None)
    text = str(err.value)
    assert "BURNGUARD_KAFKA_SASL_USERNAME" in text
    assert "hunter2" not in text and "kafka-pass-1" not in text


def test_kafka_python_config_for_sasl_over_tls(tmp_path) -> None:
    s = Settings(_env_file=None, kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                 kafka_sasl_username="svc", kafka_sasl_password="kafka-pass-1", kafka_ssl_check_hostname=False)
    cfg = s.kafka_python_config()
    assert (cfg["security_protocol"], cfg["sasl_mechanism"], cfg["sasl_plain_username"],
            cfg["sasl_plain_password"]) == ("SASL_SSL", "SCRAM-SHA-512", "svc", "kafka-pass-1")
    assert isinstance(cfg["ssl_context"], ssl.SSLContext) and cfg["ssl_context"].check_hostname is False
    from kafka import KafkaProducer
    assert set(cfg) <= set(KafkaProducer.DEFAULT_CONFIG)  # kafka-python accepts every key


def test_faust_broker_credentials() -> None:
    assert Settings(_env_file=None).faust_broker_credentials() is None
    sasl = Settings(_env_file=None, kafka_security_protocol="SASL_SSL", kafka_sasl_username="svc",
                    kafka_sasl_password="p", kafka_sasl_mechanism="SCRAM-SHA-256").faust_broker_credentials()
    assert isinstance(sasl, SASLCredentials)
    assert (sasl.protocol.value, sasl.mechanism.value, sasl.username, sasl.password) == (
        "SASL_SSL", "SCRAM-SHA-256", "svc", "p")
    assert "p'" not in repr(sasl)
    tls = Settings(_env_file=None, kafka_security_protocol="SSL").faust_broker_credentials()
    assert isinstance(tls, SSLCredentials) and tls.protocol.value == "SSL"
    plain = Settings(_env_file=None, kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="svc",
                     kafka_sasl_password="p").faust_broker_credentials()
    assert plain.protocol.value == "SASL_PLAINTEXT" and plain.ssl_context is None


def test_mutual_tls_needs_cert_and_key() -> None:
    with pytest.raises(ValidationError, match="KEYFILE"):
        Settings(_env_file=None, kafka_security_protocol="SSL", kafka_ssl_certfile="/x/cert.pem")


def test_dead_letter_retention_days() -> None:
    assert Settings(_env_file=None).dead_letter_retention_days == 30
    with pytest.raises(ValidationError):
        Settings(_env_file=None, dead_letter_retention_days=0)
