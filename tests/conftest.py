import functools
import importlib.util
import os
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import settings

# Hypothesis profiles: "ci" is deterministic (the same examples every run: a red CI is always
# reproducible), "fuzz" runs long for hunting locally (HYPOTHESIS_PROFILE=fuzz pytest tests/test_fuzz.py),
# "default" draws new examples each run. CI=true selects "ci" unless HYPOTHESIS_PROFILE says otherwise.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default"))

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def modelgen_cache(tmp_path_factory) -> Path:
    """Return the folder that serves as modelgen's cache in every test (never the user's real cache)."""
    folder = tmp_path_factory.mktemp("modelgen-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELGEN_CACHE_DIR", str(folder))
        yield folder


MODELS = ROOT / "models"
MODEL_FILES = sorted(MODELS.glob("*.model"))  # every bundled model
CURRENT_FILES = sorted((ROOT / "modelgen" / "library" / "currents").glob("*.current"))  # the current library


@functools.cache
def checked(path: Path):
    """Return the checked model in ``path``, loaded once per test session."""
    import modelgen

    return modelgen.load(path).model


def step_ufunc_calls(code: str) -> Counter:
    """Return how many times the vectorised step of a generated numpy module calls each numpy function."""
    step = re.split(r"\n    (?! )", code.split("    def _step_vectorised(", 1)[1], maxsplit=1)[0]  # to its dedent
    lines = (line.split("#", 1)[0] for line in step.splitlines())
    return Counter(name for line in lines for name in re.findall(r"\bnp\.(\w+)\(", line))


@pytest.fixture
def hh_path() -> Path:
    return MODELS / "hh.model"


@pytest.fixture
def lif_path() -> Path:
    return MODELS / "lif.model"


requires_numba = pytest.mark.skipif(
    importlib.util.find_spec("numba") is None, reason="numba backend: pip install -e '.[numba]'"
)


# numba compiles each model's module once per test session (their cache is the session's):
# 15-80 s for a model here, so its variants are among the slow tests
@pytest.fixture(params=["numpy", pytest.param("numba", marks=[requires_numba, pytest.mark.slow])])
def population_backend(request) -> str:
    """Return the backend that steps a population of more than 8 neurons: numpy (the vectorised
    step, not the per-neuron kernel of small populations) or numba (its block kernel)."""
    return request.param
