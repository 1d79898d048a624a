"""Networks: populations of models, sparse delayed projections, external drives.

A network file, one statement per line (``#`` comments)::

    network CUBA "Brette et al. 2007, benchmark 2"
    population E = "cuba_lif.model" (n = 3200, V = uniform(-60 mV, -50 mV))
    population I = "cuba_lif.model" (n = 800, V = uniform(-60 mV, -50 mV))
    connect E to E (receptor = exc, rule = fixed_probability(0.02), weight = 1.62 mV, delay = 0.1 ms)
    poisson E (receptor = exc, rate = 10 Hz, weight = 0.5 mV)
    input E (I_ext = 200 pA)
    record E (V, v_e, neurons = 5)

Populations override parameters and initial values with constants or distributions
(``uniform(a, b)``, ``normal(mean, sd)``); projections are stored as CSR arrays (sorted
by source); spikes travel through a ring buffer per target population and receptor,
with delays rounded to whole time steps. Everything random is drawn from one
``numpy.random.Generator`` seeded by ``--seed``, in file order, so a seed reproduces a run.

One module per job, each importing only those before it:

- :mod:`.common`: what they share (file suffix, spans, finding a named file);
- :mod:`.parse`: the file's syntax into a :class:`NetworkSpec`;
- :mod:`.build`: models, values and connectivity into a :class:`Network`;
- :mod:`.result`: :class:`NetworkResult` (spikes, traces, saving);
- :mod:`.run`: the numpy loop over time steps (the reference).
"""

from .build import Network, build_network, load_network
from .common import is_network_file
from .parse import NetworkSpec, parse_network_text
from .result import NetworkResult, check_save_path

__all__ = [
    "NetworkSpec",
    "Network",
    "NetworkResult",
    "parse_network_text",
    "build_network",
    "load_network",
    "is_network_file",
    "check_save_path",
]
