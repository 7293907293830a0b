"""Settings come from CRM_* environment variables and are checked at start-up."""

from __future__ import annotations

import pytest

from crm_graph.settings import Settings


def test_defaults_use_an_embedded_sqlite_file():
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite+aiosqlite:///") and settings.database_url.endswith("var/crm.sqlite3")
    assert (settings.environment, settings.host, settings.port) == ("dev", "127.0.0.1", 8000)


def test_environment_variables_are_read_and_typed():
    settings = Settings.from_env({"CRM_PORT": "9001", "CRM_ENVIRONMENT": "production", "CRM_PLUGINS_BLOCK": "a, b",
                                  "CRM_DATABASE_URL": "postgresql+asyncpg://u@h/db", "CRM_DEFAULT_PHONE_REGION": "DE",
                                  "CRM_SECRET_KEY": "a-production-secret-of-at-least-32-characters"})
    assert settings.port == 9001 and settings.is_production and settings.plugins_block == ("a", "b")
    assert not settings.is_sqlite and settings.default_phone_region == "DE"


@pytest.mark.parametrize(
    ("env", "message"),
    [({"CRM_PORT": "eighty"}, "CRM_PORT"), ({"CRM_PORT": "0"}, "CRM_PORT"), ({"CRM_ENVIRONMENT": "staging"}, "CRM_ENVIRONMENT"),
     ({"CRM_DATABASE_URL": "mysql://x"}, "CRM_DATABASE_URL")],
)
def test_bad_settings_are_refused_with_the_variable_named(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)
