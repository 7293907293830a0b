"""Run Alembic migrations programmatically (``crm-graph db``, ``serve`` and the tests).

Every command covers the core's revisions and those of the installed plugins
(``crm_register_migrations``), so a database is always migrated as a whole.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from crm_graph.settings import PROJECT_ROOT, Settings


def alembic_config(settings: Settings) -> Config:
    """The core's configuration alone (plugins add their version locations to it)."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = settings.database_url
    return config


def _full_config(settings: Settings) -> Config:
    from crm_graph.plugins import alembic_config as with_plugins  # plugins import this module

    return with_plugins(settings)


def upgrade(settings: Settings, revision: str = "heads") -> None:
    command.upgrade(_full_config(settings), revision)


def downgrade(settings: Settings, revision: str = "-1") -> None:
    command.downgrade(_full_config(settings), revision)


def check(settings: Settings) -> None:
    """Raise if the models and the migrations disagree (``alembic check``)."""
    command.check(_full_config(settings))
