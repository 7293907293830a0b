"""GraphQL of the marketing plugin (types.py: the types; api.py: queries and mutations). Thin:
the work is in campaigns.py, sender.py, consent.py, providers.py and stats.py."""

from crm_marketing.schema.api import EXTENSIONS, SCHEMA

__all__ = ["EXTENSIONS", "SCHEMA"]
