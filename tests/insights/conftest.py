from __future__ import annotations

from pathlib import Path

import pytest

from tests.insights import cdnow


@pytest.fixture(scope="session")
def cdnow_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cdnow.download(tmp_path_factory.mktemp("cdnow"))
