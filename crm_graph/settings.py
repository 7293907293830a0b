"""Typed settings, read from ``CRM_*`` environment variables.

Every setting has a default that suits a developer's machine; production deployments set
``CRM_ENVIRONMENT=production`` and a PostgreSQL ``CRM_DATABASE_URL``.

Files the server keeps for itself live in one data directory, ``CRM_DATA_DIR``: the default
SQLite database (``crm.sqlite3``), the dev secret key (``secret_key``), the dev administrator's
key (``dev_admin_key``) and GraphiQL's downloaded files (``graphiql/``). Its default depends on
how crm-graph runs:

- from a source checkout (the package sits beside the project's ``pyproject.toml``, as with
  ``make serve`` or an editable install): ``<checkout>/var``, so a developer's data stays in
  the working tree it belongs to;
- installed (from a wheel, into any environment): the per-user data directory,
  ``$XDG_DATA_HOME/crm-graph``, or ``~/.local/share/crm-graph`` when that variable is unset
  or not an absolute path (as the XDG base directory specification says). Never the
  installation's own directory: site-packages may be read-only and is replaced on upgrade.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

PACKAGE_DIR = Path(__file__).resolve().parent
# The directory above the package: the checkout's root when crm-graph runs from source (the
# tests and benches, which only run from a checkout, find README.md, docs/ ... through it).
# Installed, it is site-packages: use ``source_checkout()`` to tell the two apart.
PROJECT_ROOT = PACKAGE_DIR.parent
DISTRIBUTION = "crm-graph"


def source_checkout(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The checkout this package runs from, or None when it is installed.

    A checkout is recognised by the project's own ``pyproject.toml`` beside the package: any
    other ``pyproject.toml`` (a project that vendors the package) does not count.
    """
    pyproject = package_dir.parent / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text()).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return package_dir.parent if project.get("name") == DISTRIBUTION else None


def default_data_dir(environ: Mapping[str, str] | None = None, package_dir: Path = PACKAGE_DIR) -> Path:
    """``<checkout>/var`` from a source checkout, else the per-user data directory (module docstring)."""
    checkout = source_checkout(package_dir)
    if checkout is not None:
        return checkout / "var"
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path(env.get("HOME") or Path.home()) / ".local" / "share"
    return base / DISTRIBUTION


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Server settings. The environment variable of each field is ``CRM_`` + its upper-cased name."""

    # Where the server keeps its own files (module docstring). CRM_DATA_DIR; relative paths are
    # taken from the current directory when the settings are read.
    data_dir: Path = field(default_factory=default_data_dir)
    # Empty: the embedded SQLite file ``crm.sqlite3`` in ``data_dir``.
    database_url: str = ""
    environment: Literal["dev", "production"] = "dev"
    host: str = "127.0.0.1"
    port: int = 8000
    # Host names (the Host header) the server answers to; any other gets 400. Set the public
    # names in production; the default, loopback only, also keeps a page on another site from
    # reaching a developer's server through DNS rebinding. "*.example.com" matches subdomains.
    allowed_hosts: tuple[str, ...] = ("localhost", "*.localhost", "127.0.0.1", "::1")
    # Origins ("https://app.example.com") whose pages may call the API from a browser (CORS) and
    # open its WebSocket; "*" for any. Empty: pages served from loopback, any port, in dev; none
    # in production.
    cors_origins: tuple[str, ...] = ()
    # `crm-graph serve` against slow or idle clients: seconds a client has to send a request's
    # headers (from the connection's start or the previous answer), seconds an idle keep-alive
    # connection is kept, and the most connections served at once (past it: 503).
    http_header_timeout: float = 10.0
    http_keep_alive_timeout: float = 5.0
    http_max_connections: int = 1000
    log_level: str = "info"
    # Log lines: "json" (one object a line, for a log pipeline), "text" (for people), or "auto":
    # json in production, text in dev (crm_graph/observability/logs.py).
    log_format: Literal["auto", "json", "text"] = "auto"
    # /metrics (Prometheus text format). With a token, scrapers send `Authorization: Bearer
    # <token>`; without one it is open in dev and absent (404) in production. Disabled: nothing
    # is counted and /metrics is absent.
    metrics_enabled: bool = True
    metrics_token: str = ""
    # Traces go by OTLP/HTTP to this collector ("http://collector:4318"); empty: the standard
    # OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variables, and with none of them tracing is off.
    otel_endpoint: str = ""
    # The server's address as its clients reach it ("https://crm.example.com"), for the links it
    # hands out (import reports, exports); empty: the address the request came in on.
    public_url: str = ""
    # Seconds a signed download link (crm_graph/files) stays valid.
    download_ttl: int = 900
    # Region used to read phone numbers written without a +country prefix (ISO 3166 alpha-2).
    default_phone_region: str = "US"
    # Seconds SQLite waits for a lock before giving up.
    sqlite_busy_timeout: float = 5.0
    # GraphQL limits: query depth, aliases and tokens per document.
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    # Request limits (docs/api.md, "Limits"): the static cost of one operation, directives per
    # document (fragments expanded), characters of the document (comments and whitespace
    # included), bytes of a request body, seconds a query may run before it is cancelled,
    # database sessions one request may hold at once, and the characters of query text the
    # parsed-document cache may hold (documents over 1/100 of it are not cached).
    max_query_cost: int = 5000
    max_directives: int = 50
    # How often one selection set may select one field (one response name): validation compares
    # such selections pairwise, so 500 copies of one field take seconds to validate.
    max_field_repeats: int = 20
    max_query_length: int = 100_000
    max_request_bytes: int = 1_048_576
    request_timeout: float = 30.0
    max_request_sessions: int = 4
    document_cache_chars: int = 500_000
    # Rate limits by query cost (docs/api.md): token buckets of `rate_limit_capacity` points
    # refilled by `rate_limit_refill` points per second, one per signed-in principal, and for
    # requests without credentials one per client address (the anonymous_* pair). At most
    # `rate_limit_max_buckets` buckets are kept per kind. CRM_RATE_LIMIT_CAPACITY=0 turns it off.
    rate_limit_capacity: int = 20_000
    rate_limit_refill: float = 200.0
    anonymous_rate_limit_capacity: int = 5_000
    anonymous_rate_limit_refill: float = 20.0
    rate_limit_max_buckets: int = 100_000
    # Plugins (by name) that must not be loaded even if installed.
    plugins_block: tuple[str, ...] = ()
    # Seconds one plugin hook implementation may run before it counts as hung.
    plugin_hook_timeout: float = 5.0
    # CRM_TRACE_PLUGINS=true logs every hook call (pluggy's tracing) on the crm_graph.plugins.trace
    # logger at DEBUG level: which hook, which arguments, what came back.
    trace_plugins: bool = False
    # Event dispatcher: run it inside `serve` (off when separate `crm-graph worker`s deliver).
    dispatcher_enabled: bool = True
    # Seconds between polls of the outbox when nothing woke the dispatcher.
    dispatch_poll_interval: float = 1.0
    # Deliveries claimed per round, and how many webhook requests run at once.
    dispatch_batch_size: int = 100
    dispatch_concurrency: int = 16
    # Attempts before a delivery is dead-lettered; the delay before retry n is
    # min(cap, base * 2**(n-1)) seconds, of which a random half is taken off (jitter).
    dispatch_max_attempts: int = 20
    dispatch_backoff_base: float = 5.0
    dispatch_backoff_cap: float = 3600.0
    # Seconds a claimed delivery stays reserved for its worker; after that another worker may
    # take it over (the first one crashed). Must exceed twice the hook and webhook timeouts.
    dispatch_lease: float = 300.0
    # Outbound webhooks: allow loopback, private and link-local targets (development only).
    webhook_allow_private: bool = False
    # Seconds a webhook receiver has to answer.
    webhook_timeout: float = 10.0
    # Seconds a replaced webhook secret keeps signing deliveries beside the new one.
    webhook_secret_grace: float = 86400.0
    # Live updates (GraphQL subscriptions over WebSocket, crm_graph/core/live.py): seconds between
    # polls of the outbox for events other processes committed (this process's own commits wake
    # it at once), subscriptions one connection may hold, and undelivered events one
    # subscription may hold before it is ended as too slow.
    live_poll_interval: float = 0.5
    live_max_subscriptions: int = 20
    live_queue_size: int = 256
    # Periodic jobs inside `serve` and `crm-graph worker` (off: another process runs them).
    jobs_enabled: bool = True
    # Seconds between checks for breached service levels (0 turns the check off).
    sla_check_interval: float = 60.0
    # Seconds between stored RFM runs, over the last year of orders (0 turns it off).
    rfm_refresh_interval: float = 86400.0
    # Seconds between diffs of the DYNAMIC segments, which announce who entered and who left
    # (segment.member_added / member_removed; 0 turns them off).
    segment_diff_interval: float = 300.0
    # Customer lifetime value (docs/insights.md): the horizon in days and the annual discount rate
    # of the CLV and expected purchases stored with each run (and the defaults of
    # `Customer.lifetimeValue`), and the fewest repeat buyers a run needs to fit the models.
    clv_horizon_days: int = 365
    clv_discount_rate: float = 0.10
    clv_min_repeat_customers: int = 20
    # Days an event whose every delivery succeeded stays in the outbox (0 keeps them forever).
    # Events with a delivery still pending or dead are kept until that is settled.
    outbox_retention_days: int = 30
    # Key of the keyed hash under which API keys and session tokens are stored. Required in
    # production (32+ characters); in dev one is generated once into ``data_dir``/secret_key.
    secret_key: str = ""
    # Hours a session token from `login` stays valid.
    session_hours: float = 12.0
    # Failed sign-ins: after `login_max_failures` failures of one account or one address within
    # `login_lockout_minutes`, further attempts are refused until that window has passed; each
    # failure before that is answered a little later than the previous one.
    login_max_failures: int = 5
    login_lockout_minutes: float = 15.0
    # Seconds a verified API key or session token is remembered in this process.
    auth_cache_seconds: float = 10.0

    def __post_init__(self) -> None:
        # Frozen dataclass: defaults that depend on another field are filled in here.
        data_dir = Path(self.data_dir).expanduser().absolute()
        object.__setattr__(self, "data_dir", data_dir)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite+aiosqlite:///{data_dir / 'crm.sqlite3'}")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def hash_key(self) -> bytes:
        """The key API keys and session tokens are hashed with (see ``secret_key``)."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip().encode()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values = env_values(cls, "CRM_", env)
        if "data_dir" not in values and "data_dir" not in overrides:
            values["data_dir"] = default_data_dir(env)  # XDG_DATA_HOME and HOME of this environment
        # One constructor call, so defaults that follow another field (the database in
        # data_dir) follow an override of it too.
        settings = cls(**{**values, **overrides})
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise ValueError(f"CRM_DATA_DIR must be a directory; {self.data_dir} is a file")
        if self.environment not in ("dev", "production"):
            raise ValueError(f"CRM_ENVIRONMENT must be 'dev' or 'production', not {self.environment!r}")
        if not (0 < self.port < 65536):
            raise ValueError(f"CRM_PORT must be between 1 and 65535, not {self.port}")
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "CRM_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        for name in ("sla_check_interval", "rfm_refresh_interval", "segment_diff_interval", "outbox_retention_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"CRM_{name.upper()} must be 0 (off) or a number of seconds")
        for name in ("plugin_hook_timeout", "dispatch_poll_interval", "dispatch_backoff_base", "webhook_timeout", "live_poll_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"CRM_{name.upper()} must be a positive number of seconds")
        for name in ("dispatch_batch_size", "dispatch_concurrency", "dispatch_max_attempts", "live_max_subscriptions", "live_queue_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"CRM_{name.upper()} must be at least 1")
        if not 1 <= self.clv_horizon_days <= 36600:
            raise ValueError("CRM_CLV_HORIZON_DAYS must be a number of days from 1 to 36600")
        if not 0 <= self.clv_discount_rate <= 10:
            raise ValueError("CRM_CLV_DISCOUNT_RATE must be an annual rate from 0 to 10 (0.1 = 10%)")
        if self.clv_min_repeat_customers < 2:
            raise ValueError("CRM_CLV_MIN_REPEAT_CUSTOMERS must be at least 2")
        self._validate_request_limits()
        if self.log_format not in ("auto", "json", "text"):
            raise ValueError(f"CRM_LOG_FORMAT must be auto, json or text, not {self.log_format!r}")
        if self.otel_endpoint and not self.otel_endpoint.startswith(("http://", "https://")):
            raise ValueError("CRM_OTEL_ENDPOINT must be an http:// or https:// URL (an OTLP/HTTP collector)")
        if self.is_production and len(self.secret_key) < 32:
            raise ValueError("CRM_SECRET_KEY must be set to at least 32 random characters in production")
        if self.session_hours <= 0 or self.login_lockout_minutes <= 0 or self.login_max_failures < 1:
            raise ValueError("CRM_SESSION_HOURS, CRM_LOGIN_LOCKOUT_MINUTES and CRM_LOGIN_MAX_FAILURES must be positive")
        for pattern in self.allowed_hosts:
            if pattern != "*" and ("*" in pattern[1:] or (pattern.startswith("*") and not pattern.startswith("*."))):
                raise ValueError(f"CRM_ALLOWED_HOSTS: {pattern!r} is not a host name, '*.domain' or '*'")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"CRM_CORS_ORIGINS: {origin!r} is not an origin like https://app.example.com")
        if not (self.http_header_timeout > 0 and self.http_keep_alive_timeout > 0 and self.http_max_connections >= 1):
            raise ValueError("CRM_HTTP_HEADER_TIMEOUT and CRM_HTTP_KEEP_ALIVE_TIMEOUT must be positive, CRM_HTTP_MAX_CONNECTIONS at least 1")
        if self.dispatch_backoff_cap < self.dispatch_backoff_base:
            raise ValueError("CRM_DISPATCH_BACKOFF_CAP must not be below CRM_DISPATCH_BACKOFF_BASE")
        if self.dispatch_lease < 2 * max(self.plugin_hook_timeout, self.webhook_timeout):
            raise ValueError(
                "CRM_DISPATCH_LEASE must be at least twice CRM_PLUGIN_HOOK_TIMEOUT and CRM_WEBHOOK_TIMEOUT"
            )

    def _validate_request_limits(self) -> None:
        for name in ("max_query_cost", "max_directives", "max_field_repeats", "max_query_length", "max_request_bytes",
                     "max_request_sessions", "document_cache_chars", "rate_limit_max_buckets",
                     "max_query_depth", "max_aliases", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"CRM_{name.upper()} must be at least 1")
        if not self.request_timeout > 0:
            raise ValueError("CRM_REQUEST_TIMEOUT must be a positive number of seconds")
        if self.rate_limit_capacity < 0:
            raise ValueError("CRM_RATE_LIMIT_CAPACITY must be 0 (off) or a number of points")
        if self.rate_limit_capacity:
            # A bucket must hold the dearest query the server accepts, or that query never runs.
            for capacity, refill in (("rate_limit_capacity", "rate_limit_refill"),
                                     ("anonymous_rate_limit_capacity", "anonymous_rate_limit_refill")):
                if getattr(self, capacity) < self.max_query_cost:
                    raise ValueError(f"CRM_{capacity.upper()} must be at least CRM_MAX_QUERY_COST ({self.max_query_cost})")
                if not getattr(self, refill) > 0:
                    raise ValueError(f"CRM_{refill.upper()} must be a positive number of points per second")


def env_values(cls: type, prefix: str, environ: Mapping[str, str]) -> dict[str, object]:
    """The fields of the dataclass ``cls`` that ``environ`` sets, as ``prefix`` + the upper-cased
    field name, coerced to the field's type (int, float, bool, tuple of str, Path, str). Plugins
    read their own settings with it (``CRM_DOCUMENTS_*``)."""
    values: dict[str, object] = {}
    for f in fields(cls):
        raw = environ.get(f"{prefix}{f.name.upper()}")
        if raw is None or raw == "":
            continue
        values[f.name] = _coerce(f"{prefix}{f.name.upper()}", f.type, raw)
    return values


def _coerce(name: str, annotation: object, raw: str) -> object:
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind.startswith("tuple"):
            return _split(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError as exc:
        raise ValueError(f"{name}: {raw!r} is not a valid {kind}") from exc
    return raw
