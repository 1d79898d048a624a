"""The numba backend: numpy's module with its steps compiled by numba.

A few neurons are advanced one at a time by a compiled loop over time steps (the per-neuron
kernel that the numpy module runs in Python, here compiled); larger populations in blocks, each
step one loop over a block's neurons (the *lanes*) that the compiler turns into SIMD
instructions, printed by :class:`NumbaPrinter`. The host side (interface, initial state,
observe, recording, receive) is numpy's (:meth:`NumpyBackend.module_context`).
"""

from __future__ import annotations

from pathlib import Path

from ...optimise import StepProgram
from ..numpy.backend import NumpyBackend, scalar_block
from .printer import NumbaPrinter

__all__ = ["NumbaBackend"]

# up to this many neurons the module advances one neuron at a time (_advance_serial), checking every
# step for runaway values itself, so that its calls can be long (see steps_per_call)
SERIAL_MAX_N = 8


class NumbaBackend(NumpyBackend):
    """Generates the numba module (compiled per-neuron and block kernels, threads over blocks)."""

    name = "numba"
    folder = Path(__file__).parent
    jit = {
        "kernel": '@numba.njit(cache=True, error_model="numpy")',
        "note_spike": "@numba.njit(cache=True)",
        "scalar_helper": '@numba.njit(cache=True, error_model="numpy")',
        # the kernels write a spike's row in place, into a buffer with room for one spike per neuron
        # and step of the call: an array variable assigned in a compiled loop (a buffer replaced when
        # full) costs numba two atomic reference counts per pass, which made one LIF neuron's step
        # 2.3x slower (16.3 against 7.1 ns)
        "spikes_in_place": True,
    }

    def steps_per_call(self, n: int) -> int:
        """Return the steps per call: about 2**20 neuron-steps (compiled code), at most 5,000 (so that
        the runtime's check after a call names a short window); up to SERIAL_MAX_N neurons, whose
        kernel checks every step itself (make_simulator's check), about 2**18 and at most 50,000
        (a call's Python side, ~15 us, was a fifth of a single LIF neuron's time in calls of 5,000)."""
        if n <= SERIAL_MAX_N:
            return min(50_000, 2**18 // n)
        return min(5_000, 2**20 // n)

    def kernel_context(
        self, program: StepProgram, names: dict[str, str], prefixes: dict[str, str], context: dict
    ) -> dict:
        """Return the block kernel's data: its lines on one neuron of a block, and the helpers they call."""
        lanes = NumbaPrinter(names)
        lane_lines = scalar_block(program, lanes, prefixes, inputs="lanes")
        event = context["event"]
        if event is not None:
            lhs, op, rhs = event["relation"]
            event["lane_condition"] = f"{lanes.doprint(lhs)} {op} {lanes.doprint(rhs)}"
        return dict(
            serial_max_n=SERIAL_MAX_N,
            lane_lines=lane_lines,
            uses_lane_math=bool(lanes.helpers & {"_exp", "_expm1", "_exprel_lane"}),
            uses_exprel_lane="_exprel_lane" in lanes.helpers,
        )

    def generate_network(self, layout, build_hash: str) -> str:
        """Return the text of the compiled network program of ``layout`` (see :mod:`.network`)."""
        from .network import generate_network

        return generate_network(self, layout, build_hash)
