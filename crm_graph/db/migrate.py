"""Run Alembic migrations programmatically (``crm-graph db``, ``serve`` and the tests).

Every command covers the core's revisions and those of the installed plugins
(``crm_register_migrations``), so a database is always migrated as a whole.

The migrations ship inside the package (``crm_graph/migrations``: env.py, script.py.mako,
versions/), so an installed wheel migrates exactly like a checkout. The Alembic configuration
is built here in code rather than read from an ini file: its only inputs are paths inside the
package and the settings, so there is no file to ship, find (relative to what?) or keep in step
with the code, and nothing in it can point outside the installation. The checkout's root
``alembic.ini`` exists only for developers running ``alembic revision`` by hand; a test keeps
it in agreement with ``ALEMBIC_OPTIONS``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from crm_graph.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"

# Main options of the core's configuration, besides script_location. ``path_separator = os``:
# version locations (the core's and each plugin's) are joined by os.pathsep, so a path with
# spaces or commas stays whole.
ALEMBIC_OPTIONS = {
    "file_template": "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s",
    "path_separator": "os",
}


def option_path(path: Path) -> str:
    """A path as an Alembic option value (options are interpolated: ``%`` is written ``%%``)."""
    return str(path).replace("%", "%%")


def alembic_config(settings: Settings) -> Config:
    """The core's configuration alone (plugins add their version locations to it)."""
    config = Config()
    config.set_main_option("script_location", option_path(MIGRATIONS_DIR))
    for name, value in ALEMBIC_OPTIONS.items():
        config.set_main_option(name, value)
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
