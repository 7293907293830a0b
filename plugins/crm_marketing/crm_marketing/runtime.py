"""What one process needs to send and track marketing mail: the settings, the signing key, the
transports and providers the plugins register. One per plugin manager (so per app)."""

from __future__ import annotations

from typing import Any

from crm_graph.core.mail import MailTransport, MarketingProvider
from crm_graph.mail.transports import transports_of
from crm_graph.plugins import collect_by_key
from crm_graph.settings import Settings
from crm_marketing.config import MarketingSettings, marketing_settings


class Runtime:
    def __init__(self, settings: Settings, plugins: Any, config: MarketingSettings | None = None) -> None:
        self.settings = settings
        self.plugins = plugins
        self.config = config or marketing_settings()
        self.key = settings.hash_key() + b"|crm_marketing"
        self.transports: dict[str, MailTransport] = transports_of(plugins)
        self.providers: dict[str, MarketingProvider] = collect_by_key(
            plugins, "crm_marketing_providers", protocol=MarketingProvider, key=lambda p: p.name,
            what=lambda name: f"marketing provider {name!r}")

    @property
    def public_url(self) -> str:
        return self.config.mail.public_url.rstrip("/")

    def url(self, path: str) -> str:
        return f"{self.public_url}{path}"

    def transport(self) -> MailTransport:
        name = self.config.tuning.transport
        try:
            return self.transports[name]
        except KeyError:
            raise LookupError(f"no mail transport {name!r} (CRM_MARKETING_TRANSPORT); known: "
                              f"{', '.join(sorted(self.transports)) or 'none'}") from None

    def transport_config(self) -> dict[str, Any]:
        return self.config.mail.transport_config()


def runtime_of(settings: Settings, plugins: Any) -> Runtime:
    """The runtime of this plugin manager, made on first use (settings are read then)."""
    runtime = getattr(plugins, "_crm_marketing_runtime", None)
    if runtime is None or runtime.settings is not settings:
        runtime = Runtime(settings, plugins)
        plugins._crm_marketing_runtime = runtime
    return runtime
