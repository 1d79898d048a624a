from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


@pytest.fixture
def hh_path() -> Path:
    return MODELS / "hh.model"


@pytest.fixture
def lif_path() -> Path:
    return MODELS / "lif.model"
