"""The gateway's settings: the one place the environment is read.

A :class:`Settings` object is built once, in the composition root (``minsheng up`` or
:func:`gateway.app.create_app`), and handed down; nothing below ``gateway/`` reads the
environment. Every setting has a working default, so ``minsheng up`` runs from a fresh clone.

=========================== ===================================================================
variable                    meaning (default)
=========================== ===================================================================
``MINSHENG_ENV``            ``development`` or ``production`` (development)
``PORT``                    port to listen on (8000)
``MINSHENG_HOST``           interface to listen on (127.0.0.1)
``REDIS_URL``               Redis to use; unset → an embedded in-process store (fakeredis)
``MINSHENG_CHANNELS_FILE``  the channels file (``gateway/channels.yaml``: the sandbox channels)
``MINSHENG_SANDBOX``        mount the sandbox channels under ``/sandbox`` (on with the default file)
``MINSHENG_SANDBOX_SEED``   seed of the sandbox world (7)
``MINSHENG_SANDBOX_URL``    where the channels file finds the sandbox (``http://127.0.0.1:$PORT/sandbox``)
``MINSHENG_HASH_KEY``       key of the hashes of personal data (a development key; set it in production)
``MINSHENG_SYNC``           run the channels' sync loops (on)
``MINSHENG_SYNC_LEASE``     seconds a replica's hold on a channel's sync outlives its last renewal: how
                            long the other replicas wait before taking over from one that died (15)
``MINSHENG_REPLICA``        this gateway's name among the replicas sharing a Redis; give each live
                            replica its own (host name and process id)
``MINSHENG_LOG_LEVEL``      log level (info)
``MINSHENG_SOURCE_TIMEOUT`` seconds a live ``Case.source`` fetch may take per channel (5)
``MINSHENG_SOURCE_CACHE_TTL`` seconds a fetched source record stays in the Redis cache (3600)
``MINSHENG_MAX_PAGE_SIZE``  most items one connection page may ask for (100)
``MINSHENG_MAX_QUERY_DEPTH`` deepest selection a query may nest (15)
``MINSHENG_MAX_ALIASES``    most aliases in one query (30)
``MINSHENG_MAX_TOKENS``     most tokens in one query document (5000)
``MINSHENG_AUTH``           ``embedded`` (the built-in identity provider, the default) or ``oidc``
``MINSHENG_PUBLIC_URL``     the gateway's public base URL: the embedded issuer (``http://127.0.0.1:$PORT``)
``MINSHENG_OIDC_ISSUER``    the expected ``iss`` (``oidc``: required; embedded: the public URL)
``MINSHENG_OIDC_AUDIENCE``  the expected ``aud`` (minsheng)
``MINSHENG_OIDC_JWKS_URL``  the provider's JWKS (``oidc``: required)
``MINSHENG_OIDC_ALGORITHMS`` comma-separated pinned algorithms (RS256,ES256,EdDSA)
``MINSHENG_ACCOUNTS_FILE``  the embedded provider's accounts (``auth/data/accounts.yaml``: the demo)
``MINSHENG_IDP_KEY_FILE``   the embedded provider's PEM signing key; unset → one generated key shared
                            by every replica through Redis
``MINSHENG_TOKEN_TTL``      seconds an embedded access token lives (3600)
``MINSHENG_AUDIT_PATH``     the audit log, JSON lines with rotation (``var/audit/audit.jsonl``);
                            give each replica its own file
``MINSHENG_AUDIT_RETENTION_DAYS`` days rotated audit files are kept (180: 网络安全法 art. 21)
``MINSHENG_WEBHOOK_WINDOW`` seconds a pushed request is remembered against replays (300)
``MINSHENG_EVENTS_RETENTION`` seconds the event log keeps events; older cursors get CURSOR_EXPIRED (604800)
``MINSHENG_EVENTS_MAXLEN``  most events the log keeps, whatever their age (1000000)
``MINSHENG_ALLOWED_ORIGINS`` comma-separated browser origins allowed to open ``/graphql`` WebSockets
                            and event streams besides the gateway's own (none; ``*``: any)
``MINSHENG_WS_INIT_TIMEOUT`` seconds a WebSocket may take to send ``connection_init`` (10)
``MINSHENG_WS_KEEPALIVE``   seconds between the server's pings; an unanswered one closes (15; 0: off)
``MINSHENG_WS_MAX_SUBSCRIPTIONS`` operations one WebSocket may run at once (20)
``MINSHENG_AUTO_DISPATCH``  dispatch new clusters whose routing rule is automatic at once (on)
``MINSHENG_MAX_ROOT_FIELDS`` most root fields in one operation, fragments expanded (20)
``MINSHENG_MAX_COST``       most estimated objects one operation may ask for (25000; SECURITY.md)
``MINSHENG_DEFAULT_LIST_SIZE`` list size the cost estimate assumes where no ``first`` says (10)
``MINSHENG_MAX_BATCH``      operations in one JSON-array request; 0 turns batching off (0)
``MINSHENG_MAX_BODY_BYTES`` largest ``/graphql`` request body (1000000)
``MINSHENG_EXECUTION_TIMEOUT`` seconds one operation may run before it answers 504 (30)
``MINSHENG_CSRF_PREVENTION`` refuse requests a browser sends without a preflight (on)
``MINSHENG_RATE_LIMIT_OPERATIONS`` operations per client per window; 0: no limit (600)
``MINSHENG_RATE_LIMIT_ROOT_FIELDS`` root fields per client per window; 0: no limit (2000)
``MINSHENG_RATE_LIMIT_WINDOW`` seconds of one rate-limit window (60)
``MINSHENG_GC_YOUNG``        new objects the garbage collector lets build up before it looks for cycles
                            (``minsheng up`` and ``minsheng backfill`` set it); 0: Python's 700 (10000)
=========================== ===================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_AUDIT_PATH", "DEFAULT_CHANNELS_FILE", "DEV_HASH_KEY", "Settings"]

DEFAULT_CHANNELS_FILE = Path(__file__).with_name("channels.yaml")
DEFAULT_AUDIT_PATH = Path("var") / "audit" / "audit.jsonl"
DEV_HASH_KEY = "minsheng-development-hash-key"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")  # what redis-py's from_url accepts


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    """Everything the gateway takes from its environment; construct with keyword overrides in tests."""

    # ``populate_by_name`` lets tests write ``Settings(port=…)``; it would also make the environment
    # match bare field names (``SYNC``, ``ENV``), so those lookups get a prefix nobody sets and only the
    # documented variable names are read.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True,
                                      env_prefix="MINSHENG_SETTINGS_FIELD_")

    env: Literal["development", "production"] = Field("development", validation_alias=_env("MINSHENG_ENV"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=_env("PORT"))
    host: str = Field("127.0.0.1", validation_alias=_env("MINSHENG_HOST"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))
    channels_file: Path = Field(DEFAULT_CHANNELS_FILE, validation_alias=_env("MINSHENG_CHANNELS_FILE"))
    sandbox_enabled: bool | None = Field(None, validation_alias=_env("MINSHENG_SANDBOX"))
    sandbox_seed: int = Field(7, validation_alias=_env("MINSHENG_SANDBOX_SEED"))
    sandbox_base_url: str | None = Field(None, validation_alias=_env("MINSHENG_SANDBOX_URL"))
    hash_key: SecretStr = Field(SecretStr(DEV_HASH_KEY), validation_alias=_env("MINSHENG_HASH_KEY"))
    sync: bool = Field(True, validation_alias=_env("MINSHENG_SYNC"))
    sync_lease: float = Field(15.0, ge=1, le=3600, validation_alias=_env("MINSHENG_SYNC_LEASE"))
    replica: str | None = Field(None, min_length=1, max_length=200, validation_alias=_env("MINSHENG_REPLICA"))
    log_level: str = Field("info", validation_alias=_env("MINSHENG_LOG_LEVEL"))
    source_timeout: float = Field(5.0, gt=0, validation_alias=_env("MINSHENG_SOURCE_TIMEOUT"))
    source_cache_ttl: int = Field(3600, ge=1, validation_alias=_env("MINSHENG_SOURCE_CACHE_TTL"))
    max_page_size: int = Field(100, ge=1, le=1000, validation_alias=_env("MINSHENG_MAX_PAGE_SIZE"))
    max_query_depth: int = Field(15, ge=3, validation_alias=_env("MINSHENG_MAX_QUERY_DEPTH"))
    max_aliases: int = Field(30, ge=1, validation_alias=_env("MINSHENG_MAX_ALIASES"))
    max_tokens: int = Field(5000, ge=100, validation_alias=_env("MINSHENG_MAX_TOKENS"))
    auth: Literal["embedded", "oidc"] = Field("embedded", validation_alias=_env("MINSHENG_AUTH"))
    public_url: str | None = Field(None, validation_alias=_env("MINSHENG_PUBLIC_URL"))
    oidc_issuer: str | None = Field(None, validation_alias=_env("MINSHENG_OIDC_ISSUER"))
    oidc_audience: str = Field("minsheng", min_length=1, validation_alias=_env("MINSHENG_OIDC_AUDIENCE"))
    oidc_jwks_url: str | None = Field(None, validation_alias=_env("MINSHENG_OIDC_JWKS_URL"))
    oidc_algorithms: str = Field("RS256,ES256,EdDSA", validation_alias=_env("MINSHENG_OIDC_ALGORITHMS"))
    accounts_file: Path | None = Field(None, validation_alias=_env("MINSHENG_ACCOUNTS_FILE"))
    idp_key_file: Path | None = Field(None, validation_alias=_env("MINSHENG_IDP_KEY_FILE"))
    token_ttl: int = Field(3600, ge=60, le=86400, validation_alias=_env("MINSHENG_TOKEN_TTL"))
    audit_path: Path = Field(DEFAULT_AUDIT_PATH, validation_alias=_env("MINSHENG_AUDIT_PATH"))
    audit_retention_days: int = Field(180, ge=1, validation_alias=_env("MINSHENG_AUDIT_RETENTION_DAYS"))
    webhook_window: float = Field(300.0, gt=0, validation_alias=_env("MINSHENG_WEBHOOK_WINDOW"))
    events_retention: float = Field(7 * 24 * 3600.0, gt=0, validation_alias=_env("MINSHENG_EVENTS_RETENTION"))
    events_maxlen: int = Field(1_000_000, ge=1, validation_alias=_env("MINSHENG_EVENTS_MAXLEN"))
    allowed_origins_list: str = Field("", validation_alias=_env("MINSHENG_ALLOWED_ORIGINS"))
    ws_init_timeout: float = Field(10.0, gt=0, validation_alias=_env("MINSHENG_WS_INIT_TIMEOUT"))
    ws_keepalive: float = Field(15.0, ge=0, validation_alias=_env("MINSHENG_WS_KEEPALIVE"))
    ws_max_subscriptions: int = Field(20, ge=1, validation_alias=_env("MINSHENG_WS_MAX_SUBSCRIPTIONS"))
    auto_dispatch: bool = Field(True, validation_alias=_env("MINSHENG_AUTO_DISPATCH"))
    gc_young: int = Field(10_000, ge=0, validation_alias=_env("MINSHENG_GC_YOUNG"))

    @field_validator("redis_url")
    @classmethod
    def _a_redis_url(cls, value: str | None) -> str | None:
        """Told at start-up, not at the first command: redis-py accepts only these schemes."""
        if value and not value.startswith(REDIS_SCHEMES):
            schemes = ", ".join(REDIS_SCHEMES)
            raise ValueError(f"must start with {schemes} (or be empty for the embedded store)")
        return value

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.allowed_origins_list.split(",") if o.strip())
    max_root_fields: int = Field(20, ge=1, validation_alias=_env("MINSHENG_MAX_ROOT_FIELDS"))
    max_cost: int = Field(25_000, ge=1, validation_alias=_env("MINSHENG_MAX_COST"))
    default_list_size: int = Field(10, ge=1, validation_alias=_env("MINSHENG_DEFAULT_LIST_SIZE"))
    max_batch: int = Field(0, ge=0, le=100, validation_alias=_env("MINSHENG_MAX_BATCH"))
    max_body_bytes: int = Field(1_000_000, ge=1024, validation_alias=_env("MINSHENG_MAX_BODY_BYTES"))
    execution_timeout: float = Field(30.0, gt=0, validation_alias=_env("MINSHENG_EXECUTION_TIMEOUT"))
    csrf_prevention: bool = Field(True, validation_alias=_env("MINSHENG_CSRF_PREVENTION"))
    rate_limit_operations: int = Field(600, ge=0, validation_alias=_env("MINSHENG_RATE_LIMIT_OPERATIONS"))
    rate_limit_root_fields: int = Field(2000, ge=0, validation_alias=_env("MINSHENG_RATE_LIMIT_ROOT_FIELDS"))
    rate_limit_window: int = Field(60, ge=1, validation_alias=_env("MINSHENG_RATE_LIMIT_WINDOW"))

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def uses_default_channels(self) -> bool:
        return self.channels_file.resolve() == DEFAULT_CHANNELS_FILE.resolve()

    @property
    def sandbox(self) -> bool:
        """Whether to mount the sandbox: as configured, else only with the default channels file."""
        return self.uses_default_channels if self.sandbox_enabled is None else self.sandbox_enabled

    @property
    def sandbox_url(self) -> str:
        """Where the sandbox channels answer (each under ``/<key>``)."""
        return (self.sandbox_base_url or f"http://127.0.0.1:{self.port}/sandbox").rstrip("/")

    @property
    def base_url(self) -> str:
        """The gateway's public base URL (the embedded provider's issuer and discovery links)."""
        return (self.public_url or f"http://127.0.0.1:{self.port}").rstrip("/")

    @property
    def issuer(self) -> str:
        """The ``iss`` tokens must carry: the OIDC provider's, or the embedded provider's (our base URL)."""
        if self.auth == "oidc":
            if not self.oidc_issuer or not self.oidc_jwks_url:
                raise ValueError("MINSHENG_AUTH=oidc needs MINSHENG_OIDC_ISSUER and MINSHENG_OIDC_JWKS_URL")
            return self.oidc_issuer.rstrip("/")
        return (self.oidc_issuer or self.base_url).rstrip("/")

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(alg.strip() for alg in self.oidc_algorithms.split(",") if alg.strip())

    @property
    def hash_key_is_default(self) -> bool:
        return self.hash_key.get_secret_value() == DEV_HASH_KEY

    def webhook_url(self, channel: str) -> str:
        """The URL a channel pushes to, as the gateway itself reaches it on loopback."""
        return f"http://127.0.0.1:{self.port}/hooks/{channel}"

    def interpolation(self) -> Mapping[str, str]:
        """The variables ``${VAR}`` in the channels file may use: the environment plus derived values."""
        return {**os.environ, "MINSHENG_SANDBOX_URL": self.sandbox_url, "PORT": str(self.port)}
