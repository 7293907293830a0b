"""The data directory (CRM_DATA_DIR): where the default database, the dev keys and GraphiQL's
files go, from a checkout and once installed (tests/test_wheel.py runs the installed case for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_graph.auth import dev
from crm_graph.graphql import ide
from crm_graph.settings import PROJECT_ROOT, Settings, default_data_dir, source_checkout


def _installed_package(root: Path) -> Path:
    """A crm_graph directory laid out as pip installs it: in site-packages, no pyproject beside it."""
    package = root / "lib" / "python3.11" / "site-packages" / "crm_graph"
    package.mkdir(parents=True)
    return package


def test_in_the_checkout_everything_stays_in_var_as_make_serve_always_kept_it():
    settings = Settings.from_env({})
    assert source_checkout() == PROJECT_ROOT
    assert settings.data_dir == PROJECT_ROOT / "var"
    assert settings.database_url == f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'crm.sqlite3'}"
    assert dev.key_file(settings) == PROJECT_ROOT / "var" / "dev_admin_key"
    assert ide.assets_dir(settings) == PROJECT_ROOT / "var" / "graphiql"


def test_installed_the_default_is_the_per_user_data_directory(tmp_path):
    package = _installed_package(tmp_path / "venv")
    home = tmp_path / "home"
    assert source_checkout(package) is None
    assert default_data_dir({"HOME": str(home), "XDG_DATA_HOME": str(tmp_path / "xdg")}, package) == tmp_path / "xdg" / "crm-graph"
    assert default_data_dir({"HOME": str(home)}, package) == home / ".local" / "share" / "crm-graph"
    # The XDG specification: a relative XDG_DATA_HOME is invalid and ignored.
    assert default_data_dir({"HOME": str(home), "XDG_DATA_HOME": "data"}, package) == home / ".local" / "share" / "crm-graph"


def test_another_projects_pyproject_beside_the_package_is_not_a_checkout(tmp_path):
    package = tmp_path / "vendoring-app" / "crm_graph"
    package.mkdir(parents=True)
    (package.parent / "pyproject.toml").write_text('[project]\nname = "vendoring-app"\n')
    assert source_checkout(package) is None
    (package.parent / "pyproject.toml").write_text("not toml [")
    assert source_checkout(package) is None
    (package.parent / "pyproject.toml").write_text('[project]\nname = "crm-graph"\n')
    assert default_data_dir({}, package) == package.parent / "var"


def test_crm_data_dir_moves_the_database_and_the_dev_secret(tmp_path):
    settings = Settings.from_env({"CRM_DATA_DIR": str(tmp_path / "data")})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'crm.sqlite3'}"
    key = settings.hash_key()
    secret = tmp_path / "data" / "secret_key"
    assert secret.read_text().strip().encode() == key and oct(secret.stat().st_mode & 0o777) == "0o600"
    assert Settings.from_env({"CRM_DATA_DIR": str(tmp_path / "data")}).hash_key() == key  # kept, not regenerated
    named = Settings.from_env({"CRM_DATA_DIR": str(tmp_path), "CRM_DATABASE_URL": "postgresql+asyncpg://u@h/db"})
    assert named.database_url == "postgresql+asyncpg://u@h/db" and named.data_dir == tmp_path


def test_a_relative_data_dir_is_taken_from_the_starting_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({"CRM_DATA_DIR": "crm-data"}).data_dir == tmp_path / "crm-data"


def test_a_data_dir_that_is_a_file_is_refused_with_the_variable_named(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(ValueError, match="CRM_DATA_DIR"):
        Settings.from_env({"CRM_DATA_DIR": str(tmp_path / "taken")})
