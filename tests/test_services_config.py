"""Settings: one prefix, typed, secrets never shown, security settings passed to the clients."""

from __future__ import annotations

import logging
import re

import pytest

from clippings.errors import ConfigError
from clippings.services.config import EmbedderSettings, LinkerSettings, describe, load_settings, redact_url
from clippings.services.kafka.clients import client_config


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
    """Errors of checks across settings name the variables a user sets, not the fields."""
    with pytest.raises(ConfigError) as info:
        load_settings(EmbedderSettings, kafka_security_protocol="SASL_SSL")
    assert "CLIPPINGS_KAFKA_SECURITY_PROTOCOL" in str(info.value) and "CLIPPINGS_KAFKA_SASL_MECHANISM" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_settings(EmbedderSettings, kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512")
    assert "CLIPPINGS_KAFKA_SASL_USERNAME" in str(info.value) and "CLIPPINGS_KAFKA_SASL_PASSWORD" in str(info.value)


def _named_variables(message: str) -> list[str]:
    return re.findall(r"\bCLIPPINGS_[A-Z0-9_]*", message)


@pytest.mark.parametrize("env, overrides, wanted", [
    ({}, dict(kafka_security_protocol="SASL_SSL"), {"CLIPPINGS_KAFKA_SECURITY_PROTOCOL", "CLIPPINGS_KAFKA_SASL_MECHANISM"}),
    ({"CLIPPINGS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "CLIPPINGS_KAFKA_SASL_MECHANISM": "PLAIN"}, {},
     {"CLIPPINGS_KAFKA_SASL_MECHANISM", "CLIPPINGS_KAFKA_SASL_USERNAME", "CLIPPINGS_KAFKA_SASL_PASSWORD"}),
    ({"CLIPPINGS_IMAGE_FILE_ROOTS": "[1]"}, {}, {"CLIPPINGS_IMAGE_FILE_ROOTS"}),
    ({"CLIPPINGS_KAFKA_EXTRA": '{"a": 3}'}, {}, {"CLIPPINGS_KAFKA_EXTRA"}),
    ({"CLIPPINGS_KAFKA_EXTRA": '{"sasl.password": "hunter2'}, {}, {"CLIPPINGS_KAFKA_EXTRA"}),  # not JSON
    ({"CLIPPINGS_ONNX_PROVIDERS": "CPUExecutionProvider"}, {}, {"CLIPPINGS_ONNX_PROVIDERS"}),  # not a JSON list
    ({"CLIPPINGS_METRICS_PORT": "99999", "CLIPPINGS_MODEL_VARIANT": "fp8"}, {},
     {"CLIPPINGS_METRICS_PORT", "CLIPPINGS_MODEL_VARIANT"}),
], ids=["sasl-mechanism", "sasl-credentials", "list-item", "dict-value", "bad-json", "not-a-list", "two-fields"])
def test_every_settings_error_names_only_real_variables(monkeypatch, env, overrides, wanted):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(EmbedderSettings, **overrides)
    message = str(info.value)
    real = {f"CLIPPINGS_{f.upper()}" for f in EmbedderSettings.model_fields}
    named = set(_named_variables(message))
    assert wanted <= named and named <= real, message
    assert "hunter2" not in message


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
    from clippings.services.linker.service import LinkerService

    monkeypatch.setenv("CLIPPINGS_REDIS_PASSWORD", "hunter2-pw")
    s = load_settings(LinkerSettings, model=str(tmp_path / "no-model"), metrics_port=0)
    with caplog.at_level(logging.INFO), pytest.raises(Exception):
        LinkerService(s).run()  # fails at the missing model, after logging its settings
    assert "redis_password=***" in caplog.text and "hunter2" not in caplog.text


def test_redact_url():
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    assert redact_url("rediss://linker:pw@redis.internal:6380/1") == "rediss://linker:***@redis.internal:6380/1"
    # Without ':' some clients take the user-info for the password: masked whole.
    assert redact_url("redis://s3cret@h:1/0") == "redis://***@h:1/0"
    assert redact_url("redis://h:1/0?db=2&password=x&socket_timeout=5") == "redis://h:1/0?db=2&password=***&socket_timeout=5"


# Passwords as a user pastes them, with the characters that end the userinfo part of a URL
# unencoded; each is distinctive enough that any three of its characters in a row give it away.
PASSWORDS = ["Zq/9Xw", "Zq#9Xw", "Zq[9Xw", "Zq?9Xw", "12/9Xw", "Zq@9Xw", "Zq:9Xw", "Zq%9Xw", "Zq/9#X?w@", "Zq9Xw/", ":Zq9Xw"]
URL_FORMS = ["redis://{p}@redis.internal:6380/1", "redis://linker:{p}@redis.internal:6380/1",
             "rediss://:{p}@redis.internal/1", "redis://linker:{p}@redis.internal:6380/1?db=2#frag",
             "redis://linker:{p}@redis.internal:notaport/1", "linker:{p}@redis.internal",
             "redis://redis.internal:6380/1?password={p}", "unix:///run/redis.sock?db=0&password={p}"]


def _leaks(text: str, password: str) -> bool:
    core = password.strip(":")
    return any(core[i:i + 3] in text for i in range(len(core) - 2))


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("form", URL_FORMS)
def test_redact_url_never_shows_any_part_of_a_password(form, password):
    url = form.format(p=password)
    shown = redact_url(url)
    if form.startswith("redis://{p}@"):  # user:password: the part before ':' is a user name
        password = password.split(":", 1)[-1]
    assert not _leaks(shown, password), (url, shown)
    assert "***" in shown
    if "://" in url:
        assert shown.startswith(url.split("://")[0] + "://")


@pytest.mark.parametrize("password", ["Zq/9Xw", "Zq#9Xw", "Zq?9Xw", "12/9Xw"])
def test_a_redis_url_with_an_unencoded_password_is_refused_without_showing_it(password):
    url = f"redis://linker:{password}@redis.internal:6380/1"
    with pytest.raises(ConfigError) as info:
        load_settings(LinkerSettings, redis_url=url)
    message = str(info.value)
    assert "CLIPPINGS_REDIS_URL" in message and "percent-encode" in message
    assert not _leaks(message, password), message


@pytest.mark.parametrize("password", ["Zq@9Xw", "Zq:9Xw", "Zq9Xw"])
def test_describe_masks_a_parseable_password(monkeypatch, password):
    monkeypatch.setenv("CLIPPINGS_REDIS_URL", f"redis://linker:{password}@redis.internal:6380/1")
    shown = describe(load_settings(LinkerSettings))
    assert "redis_url=redis://linker:***@redis.internal:6380/1" in shown
    assert not _leaks(shown, password)


def test_health_and_metrics_listen_on_loopback_by_default():
    """Reaching them from outside takes an explicit 0.0.0.0 (the Kubernetes manifests set it)."""
    for cls in (EmbedderSettings, LinkerSettings):
        assert load_settings(cls).metrics_host == "127.0.0.1"


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
    from clippings.services.linker.store import RedisState

    monkeypatch.setenv("CLIPPINGS_REDIS_URL", "rediss://redis.internal:6380/2")
    monkeypatch.setenv("CLIPPINGS_REDIS_PASSWORD", "hunter2")
    s = load_settings(LinkerSettings, redis_username="linker", redis_ssl_ca_certs="/etc/redis-ca.pem")
    kwargs = RedisState.from_settings(s).client.connection_pool.connection_kwargs  # no connection made
    assert kwargs["host"] == "redis.internal" and kwargs["port"] == 6380 and kwargs["db"] == 2
    assert kwargs["username"] == "linker" and kwargs["password"] == "hunter2"
    assert kwargs["ssl_ca_certs"] == "/etc/redis-ca.pem"
    plain = RedisState.from_settings(load_settings(LinkerSettings, redis_url="redis://h:1/0", redis_ssl_ca_certs="/x"))
    assert "ssl_ca_certs" not in plain.client.connection_pool.connection_kwargs
