"""Settings: one prefix, typed, secrets never shown, security settings passed to the clients."""

from __future__ import annotations

import logging

import pytest

from clippings.errors import ConfigError
from clippings.services.config import EmbedderSettings, LinkerSettings, describe, load_settings, redact_url
from clippings.services.kafka import client_config


def test_env_prefix_and_overrides(monkeypatch):
    monkeypatch.setenv("CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS", "k1:9093,k2:9093")
    monkeypatch.setenv("CLIPPINGS_BATCH_MAX_EVENTS", "128")
    monkeypatch.setenv("CLIPPINGS_IMAGE_FILE_ROOTS", '["/data/scans"]')
    s = load_settings(EmbedderSettings, metrics_port=9999, model=None)
    assert s.kafka_bootstrap_servers == "k1:9093,k2:9093"
    assert s.batch_max_events == 128 and s.metrics_port == 9999 and s.model == "news"
    assert [str(p) for p in s.image_file_roots] == ["/data/scans"]
    with pytest.raises(Exception):
        s.batch_max_events = 3  # frozen


def test_invalid_settings_name_the_variable(monkeypatch):
    monkeypatch.setenv("CLIPPINGS_BATCH_MAX_EVENTS", "0")
    with pytest.raises(ConfigError, match="CLIPPINGS_BATCH_MAX_EVENTS"):
        load_settings(EmbedderSettings)


def test_sasl_needs_its_credentials():
    with pytest.raises(ConfigError, match="kafka_sasl_mechanism"):
        load_settings(EmbedderSettings, kafka_security_protocol="SASL_SSL")
    with pytest.raises(ConfigError, match="kafka_sasl_username"):
        load_settings(EmbedderSettings, kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512")


def test_kafka_security_passed_through_and_secrets_not_described(monkeypatch):
    monkeypatch.setenv("CLIPPINGS_KAFKA_SASL_PASSWORD", "hunter2-kafka")
    monkeypatch.setenv("CLIPPINGS_REDIS_URL", "rediss://linker:hunter2-redis@redis.internal:6380/1")
    monkeypatch.setenv("CLIPPINGS_KAFKA_EXTRA", '{"ssl.keystore.password": "hunter2-extra"}')
    s = load_settings(LinkerSettings, kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-256",
                      kafka_sasl_username="linker", kafka_ssl_ca_location="/etc/ca.pem")
    conf = client_config(s)
    assert conf["security.protocol"] == "sasl_ssl" and conf["sasl.mechanism"] == "SCRAM-SHA-256"
    assert conf["sasl.username"] == "linker" and conf["sasl.password"] == "hunter2-kafka"
    assert conf["ssl.ca.location"] == "/etc/ca.pem" and conf["ssl.endpoint.identification.algorithm"] == "https"
    assert conf["ssl.keystore.password"] == "hunter2-extra"
    text = describe(s) + repr(s) + str(s)
    assert "hunter2" not in text
    assert "redis_url=rediss://linker:***@redis.internal:6380/1" in describe(s)
    assert "kafka_extra=ssl.keystore.password" in describe(s)


def test_secrets_not_logged_by_a_starting_service(monkeypatch, caplog, tmp_path):
    """The start-up line lists every setting; the password stays out of it."""
    from clippings.services.linker import LinkerService

    monkeypatch.setenv("CLIPPINGS_REDIS_PASSWORD", "hunter2-pw")
    s = load_settings(LinkerSettings, model=str(tmp_path / "no-model"), metrics_port=0)
    with caplog.at_level(logging.INFO), pytest.raises(Exception):
        LinkerService(s).run()  # fails at the missing model, after logging its settings
    assert "redis_password=***" in caplog.text and "hunter2" not in caplog.text


def test_redact_url():
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"


def test_redis_prefix_must_be_a_plain_word():
    with pytest.raises(ConfigError):
        load_settings(LinkerSettings, redis_prefix="two words")


def test_every_setting_is_documented():
    from pathlib import Path

    from clippings.services.config import ClientSettings

    doc = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    for cls in (EmbedderSettings, LinkerSettings, ClientSettings):
        for name in cls.model_fields:
            assert f"`CLIPPINGS_{name.upper()}`" in doc, name


def test_redis_auth_and_tls_passed_through(monkeypatch):
    from clippings.services.state import RedisState

    monkeypatch.setenv("CLIPPINGS_REDIS_URL", "rediss://redis.internal:6380/2")
    monkeypatch.setenv("CLIPPINGS_REDIS_PASSWORD", "hunter2")
    s = load_settings(LinkerSettings, redis_username="linker", redis_ssl_ca_certs="/etc/redis-ca.pem")
    kwargs = RedisState.from_settings(s).client.connection_pool.connection_kwargs  # no connection made
    assert kwargs["host"] == "redis.internal" and kwargs["port"] == 6380 and kwargs["db"] == 2
    assert kwargs["username"] == "linker" and kwargs["password"] == "hunter2"
    assert kwargs["ssl_ca_certs"] == "/etc/redis-ca.pem"
    plain = RedisState.from_settings(load_settings(LinkerSettings, redis_url="redis://h:1/0", redis_ssl_ca_certs="/x"))
    assert "ssl_ca_certs" not in plain.client.connection_pool.connection_kwargs
