"""The review application's settings: one pydantic-settings class, env prefix CLIPPINGS_.

Secrets (the password, the session key, the database and Redis URLs) are SecretStr: they
print as '**********' and are unwrapped only where they are used.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from clippings.errors import ConfigError
from clippings.services.config import KafkaSettings, load_settings

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class ReviewSettings(KafkaSettings):
    review_database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    # Loopback by default: the page is for reviewers on this machine or behind a proxy.
    review_host: str = "127.0.0.1"
    review_port: int = Field(8400, ge=0, le=65535)  # 0: any free port (tests)
    review_password: SecretStr | None = None  # the server refuses to start without one
    review_secret_key: SecretStr | None = None  # Flask session key; None: random per process
    review_group_id: str = "clippings-review"
    redis_url: SecretStr | None = SecretStr("redis://127.0.0.1:6379/0")  # the linker's state; None: not shown
    redis_username: str | None = None  # as the linker's (services/config.py)
    redis_password: SecretStr | None = None
    redis_prefix: str = "clippings"
    # The session cookie only over HTTPS: set it when the page is served behind TLS.
    review_cookie_secure: bool = False
    # file:// image references are shown only for regular files under these folders.
    review_image_roots: list[Path] = Field(default_factory=list)
    # How long an action waits for the broker's acknowledgement before it is left for the
    # background republisher (the row is stored either way).
    review_publish_timeout_s: float = Field(10.0, gt=0)
    review_threads: int = Field(4, ge=1, le=64)  # waitress worker threads


def load_review_settings(**overrides) -> ReviewSettings:
    return load_settings(ReviewSettings, **overrides)


def require_password(s: ReviewSettings) -> str:
    """The login password, or a ConfigError: the page is never served without one."""
    password = s.review_password.get_secret_value() if s.review_password else ""
    if not password:
        raise ConfigError("no review password: set CLIPPINGS_REVIEW_PASSWORD (the page is never served "
                          "without a login)")
    return password
