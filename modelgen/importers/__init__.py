"""Importers: other formats read into modelgen's language text (``nmodl``: NEURON's .mod channels)."""
