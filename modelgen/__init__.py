"""modelgen: neuron membrane models as text -> sympy -> generated numpy simulators."""

__version__ = "0.1.0"

from .api import NeuronModel, load, load_text  # noqa: E402
from .diagnostics import Diagnostic, ModelError  # noqa: E402
from .memory import MemoryLimitError  # noqa: E402
from .runtime import Result, SimulationError  # noqa: E402

__all__ = [
    "__version__",
    "load",
    "load_text",
    "NeuronModel",
    "ModelError",
    "Diagnostic",
    "Result",
    "SimulationError",
    "MemoryLimitError",
]
