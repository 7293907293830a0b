"""Run Alembic migrations programmatically (``crm-graph db``, ``serve`` and the tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from crm_graph.settings import PROJECT_ROOT, Settings


def alembic_config(settings: Settings) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = settings.database_url
    return config


def upgrade(settings: Settings, revision: str = "heads") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "-1") -> None:
    command.downgrade(alembic_config(settings), revision)


def check(settings: Settings) -> None:
    """Raise if the models and the migrations disagree (``alembic check``)."""
    command.check(alembic_config(settings))


def current(settings: Settings) -> str | None:
    from alembic.runtime.migration import MigrationContext  # noqa: F401

    import io
    import contextlib

    buffer = io.StringIO()
    config = alembic_config(settings)
    config.stdout = buffer
    with contextlib.redirect_stdout(buffer):
        command.current(config)
    return buffer.getvalue().strip() or None
