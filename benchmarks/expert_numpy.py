"""Numpy implementations of the benchmark models as an expert writes them by hand.

The naive versions (baselines.py) allocate a temporary per operation. These do what a careful
numpy programmer does for speed: every buffer is allocated once before the time loop and every
operation writes into one (``out=``); powers are products (``m*m*m``, ``(n*n)*(n*n)``);
constants that depend only on parameters and dt are computed once; no reciprocal is taken where
a division or a precomputed factor does. They are not blocked for the cache (that is a step
beyond what one writes by hand). Same equations, schemes, spike rules and return value as
baselines.py: ``(seconds in the time loop, V of the recorded neurons (n_rec, steps + 1), spike
neuron indices, spike step indices)``.
"""

from __future__ import annotations

import math
import time

import numpy as np
from baselines import (
    C_M,
    E_K,
    E_L,
    E_NA,
    G_K,
    G_L,
    G_NA,
    IZ_A,
    IZ_B,
    IZ_C,
    IZ_D,
    LIF_C,
    LIF_E_L,
    LIF_E_SYN,
    LIF_G_L,
    LIF_T_REF,
    LIF_TAU_SYN,
    LIF_V_RESET,
    LIF_V_TH,
    _cat,
    hh_initial,
)

# rate functions with the constant factors folded: 4*exp(-(V + 65)/18) = B_M*exp(-V/18), ...
B_M, A_H, B_H, B_N = 4 * math.exp(-65 / 18), 0.07 * math.exp(-65 / 20), math.exp(-35 / 10), 0.125 * math.exp(-65 / 80)


class _HHRates:
    """Buffers for the six HH rate functions; ``compute(V)`` fills them in place."""

    def __init__(self, n: int):
        self.am, self.bm, self.ah, self.bh, self.an, self.bn, self.x = (np.empty(n) for _ in range(7))

    def compute(self, V) -> None:
        am, bm, ah, bh, an, bn, x = self.am, self.bm, self.ah, self.bh, self.an, self.bn, self.x
        # alpha_m = 0.1 (V + 40)/(1 - exp(-(V + 40)/10)) = x/expm1(x) with x = -(V + 40)/10
        np.multiply(V, -0.1, out=x)
        np.subtract(x, 4.0, out=x)
        np.expm1(x, out=am)
        np.divide(x, am, out=am)
        np.subtract(x, 1.5, out=x)  # alpha_n: -(V + 55)/10 = -(V + 40)/10 - 1.5
        np.expm1(x, out=an)
        np.divide(x, an, out=an)
        np.multiply(an, 0.1, out=an)
        np.multiply(V, -1 / 18, out=bm)
        np.exp(bm, out=bm)
        np.multiply(bm, B_M, out=bm)
        np.multiply(V, -0.05, out=ah)
        np.exp(ah, out=ah)
        np.multiply(ah, A_H, out=ah)
        np.multiply(V, -0.1, out=bh)
        np.exp(bh, out=bh)
        np.multiply(bh, B_H, out=bh)
        np.add(bh, 1.0, out=bh)
        np.reciprocal(bh, out=bh)
        np.multiply(V, -0.0125, out=bn)
        np.exp(bn, out=bn)
        np.multiply(bn, B_N, out=bn)


def _spikes_of(above, was_above, spiked, k, spike_i, spike_k) -> None:
    """Note the upward threshold crossings (above and not was_above) of step k; was_above := above."""
    np.greater(above, was_above, out=spiked)
    np.copyto(was_above, above)
    if spiked.any():
        idx = np.flatnonzero(spiked)
        spike_i.append(idx)
        spike_k.append(np.full(idx.size, k))


def hh_exponential_euler(n, steps, dt, i_ext, n_rec=1):
    """Exponential Euler: the gates from V(t), then V with the new gates (as NEURON does)."""
    V, m, h, nk = hh_initial(n)
    r = _HHRates(n)
    S, g_na, g_k, g = (np.empty(n) for _ in range(4))
    above, spiked = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
    was_above = V > 0
    i_ext = np.broadcast_to(i_ext, (n,))
    rec = np.empty((n_rec, steps + 1))
    rec[:, 0] = V[:n_rec]
    spike_i, spike_k = [], []
    start = time.perf_counter()
    for k in range(steps):
        r.compute(V)
        # each gate x relaxes to x_inf = a/(a + b) at the rate S = a + b: x = x_inf + (x - x_inf)*exp(-S dt)
        for x, a, b in ((m, r.am, r.bm), (h, r.ah, r.bh), (nk, r.an, r.bn)):
            np.add(a, b, out=S)
            np.divide(a, S, out=a)  # x_inf
            np.multiply(S, -dt, out=S)
            np.exp(S, out=S)
            np.subtract(x, a, out=x)
            np.multiply(x, S, out=x)
            np.add(x, a, out=x)
        # V relaxes to the conductance-weighted mean of the reversal potentials
        np.multiply(m, m, out=g_na)
        np.multiply(g_na, m, out=g_na)
        np.multiply(g_na, h, out=g_na)
        np.multiply(g_na, G_NA, out=g_na)
        np.multiply(nk, nk, out=g_k)
        np.multiply(g_k, g_k, out=g_k)
        np.multiply(g_k, G_K, out=g_k)
        np.add(g_na, g_k, out=g)
        np.add(g, G_L, out=g)
        np.multiply(g_na, E_NA, out=g_na)  # V_inf = (g_na E_Na + g_k E_K + g_L E_L + I)/g, in g_na
        np.multiply(g_k, E_K, out=g_k)
        np.add(g_na, g_k, out=g_na)
        np.add(g_na, i_ext, out=g_na)
        np.add(g_na, G_L * E_L, out=g_na)
        np.divide(g_na, g, out=g_na)
        np.multiply(g, -dt / C_M, out=g)
        np.exp(g, out=g)
        np.subtract(V, g_na, out=V)
        np.multiply(V, g, out=V)
        np.add(V, g_na, out=V)
        np.greater(V, 0.0, out=above)
        _spikes_of(above, was_above, spiked, k, spike_i, spike_k)
        rec[:, k + 1] = V[:n_rec]
    return time.perf_counter() - start, rec, _cat(spike_i), _cat(spike_k)


def hh_rk4(n, steps, dt, i_ext, n_rec=1):
    """The classic four-stage Runge-Kutta scheme on (V, m, h, n)."""
    y = hh_initial(n)
    r = _HHRates(n)
    stage = [np.empty(n) for _ in range(4)]  # the state at which a stage is evaluated
    deriv = [np.empty(n) for _ in range(4)]  # that stage's derivatives
    total = [np.empty(n) for _ in range(4)]  # k1 + 2 k2 + 2 k3 + k4
    tmp = np.empty(n)
    above, spiked = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
    was_above = y[0] > 0
    i_ext = np.broadcast_to(i_ext, (n,))
    rec = np.empty((n_rec, steps + 1))
    rec[:, 0] = y[0][:n_rec]
    spike_i, spike_k = [], []

    def derivatives(V, m, h, nk) -> None:
        r.compute(V)
        dV, dm, dh, dn = deriv
        # dV/dt = (I - g_Na m^3 h (V - E_Na) - g_K n^4 (V - E_K) - g_L (V - E_L))/C
        np.multiply(m, m, out=tmp)
        np.multiply(tmp, m, out=tmp)
        np.multiply(tmp, h, out=tmp)
        np.subtract(V, E_NA, out=dV)
        np.multiply(dV, tmp, out=dV)
        np.multiply(dV, G_NA, out=dV)
        np.multiply(nk, nk, out=tmp)
        np.multiply(tmp, tmp, out=tmp)
        np.multiply(tmp, G_K, out=tmp)
        np.subtract(V, E_K, out=dm)  # dm as a scratch buffer
        np.multiply(tmp, dm, out=tmp)
        np.add(dV, tmp, out=dV)
        np.subtract(V, E_L, out=tmp)
        np.multiply(tmp, G_L, out=tmp)
        np.add(dV, tmp, out=dV)
        np.subtract(i_ext, dV, out=dV)
        np.multiply(dV, 1 / C_M, out=dV)
        # dx/dt = a (1 - x) - b x = a - (a + b) x
        for d, x, a, b in ((dm, m, r.am, r.bm), (dh, h, r.ah, r.bh), (dn, nk, r.an, r.bn)):
            np.add(a, b, out=d)
            np.multiply(d, x, out=d)
            np.subtract(a, d, out=d)

    start = time.perf_counter()
    for k in range(steps):
        derivatives(*y)
        for j in range(4):
            np.copyto(total[j], deriv[j])
            np.multiply(deriv[j], 0.5 * dt, out=stage[j])
            np.add(stage[j], y[j], out=stage[j])
        derivatives(*stage)
        for j in range(4):
            np.multiply(deriv[j], 2.0, out=tmp)
            np.add(total[j], tmp, out=total[j])
            np.multiply(deriv[j], 0.5 * dt, out=stage[j])
            np.add(stage[j], y[j], out=stage[j])
        derivatives(*stage)
        for j in range(4):
            np.multiply(deriv[j], 2.0, out=tmp)
            np.add(total[j], tmp, out=total[j])
            np.multiply(deriv[j], dt, out=stage[j])
            np.add(stage[j], y[j], out=stage[j])
        derivatives(*stage)
        for j in range(4):
            np.add(total[j], deriv[j], out=total[j])
            np.multiply(total[j], dt / 6, out=total[j])
            np.add(y[j], total[j], out=y[j])
        np.greater(y[0], 0.0, out=above)
        _spikes_of(above, was_above, spiked, k, spike_i, spike_k)
        rec[:, k + 1] = y[0][:n_rec]
    return time.perf_counter() - start, rec, _cat(spike_i), _cat(spike_k)


def lif(n, steps, dt, i_ext, n_rec=1):
    """Exponential Euler (exact for a fixed conductance), threshold, reset and refractory period."""
    V = np.full(n, LIF_E_L)
    g_syn = np.zeros(n)
    refractory_until = np.zeros(n, dtype=np.int64)
    ref_steps = int(round(LIF_T_REF / dt))
    syn_decay = math.exp(-dt / LIF_TAU_SYN)
    g, V_inf, V_new = np.empty(n), np.empty(n), np.empty(n)
    free, spiked = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
    i_ext = np.broadcast_to(i_ext, (n,))
    rec = np.empty((n_rec, steps + 1))
    rec[:, 0] = V[:n_rec]
    spike_i, spike_k = [], []
    start = time.perf_counter()
    for k in range(steps):
        np.greater_equal(k, refractory_until, out=free)
        np.multiply(g_syn, syn_decay, out=g_syn)
        np.add(g_syn, LIF_G_L, out=g)
        # V_inf = (g_L E_L + g_syn E_syn + I)/g; V = V_inf + (V - V_inf) exp(-dt g/C)
        np.multiply(g_syn, LIF_E_SYN, out=V_inf)
        np.add(V_inf, i_ext, out=V_inf)
        np.add(V_inf, LIF_G_L * LIF_E_L, out=V_inf)
        np.divide(V_inf, g, out=V_inf)
        np.multiply(g, -dt / LIF_C, out=g)
        np.exp(g, out=g)
        np.subtract(V, V_inf, out=V_new)
        np.multiply(V_new, g, out=V_new)
        np.add(V_new, V_inf, out=V_new)
        np.copyto(V, V_new, where=free)  # refractory neurons hold V
        np.greater(V, LIF_V_TH, out=spiked)
        np.logical_and(spiked, free, out=spiked)
        if spiked.any():
            idx = np.flatnonzero(spiked)
            V[idx] = LIF_V_RESET
            refractory_until[idx] = k + 1 + ref_steps
            spike_i.append(idx)
            spike_k.append(np.full(idx.size, k))
        rec[:, k + 1] = V[:n_rec]
    return time.perf_counter() - start, rec, _cat(spike_i), _cat(spike_k)


def izhikevich(n, steps, dt, i_in, n_rec=1):
    """RK4 on (v, u); spike when v > 30 mV: v = c, u += d."""
    v = np.full(n, -65.0)
    u = IZ_B * v
    sv, su, kv, ku, tv, tu, tmp = (np.empty(n) for _ in range(7))
    spiked = np.empty(n, dtype=bool)
    i_in = np.broadcast_to(i_in, (n,))
    rec = np.empty((n_rec, steps + 1))
    rec[:, 0] = v[:n_rec]
    spike_i, spike_k = [], []

    def f(v, u) -> None:
        # dv/dt = (0.04 v + 5) v + 140 - u + I; du/dt = a (b v - u)
        np.multiply(v, 0.04, out=kv)
        np.add(kv, 5.0, out=kv)
        np.multiply(kv, v, out=kv)
        np.subtract(kv, u, out=kv)
        np.add(kv, i_in, out=kv)
        np.add(kv, 140.0, out=kv)
        np.multiply(v, IZ_B, out=ku)
        np.subtract(ku, u, out=ku)
        np.multiply(ku, IZ_A, out=ku)

    def stage(h) -> None:  # (sv, su) = (v, u) + h (kv, ku)
        np.multiply(kv, h, out=sv)
        np.add(sv, v, out=sv)
        np.multiply(ku, h, out=su)
        np.add(su, u, out=su)

    def accumulate(weight) -> None:  # (tv, tu) += weight (kv, ku)
        for t, d in ((tv, kv), (tu, ku)):
            np.multiply(d, weight, out=tmp)
            np.add(t, tmp, out=t)

    start = time.perf_counter()
    for k in range(steps):
        f(v, u)
        np.copyto(tv, kv)
        np.copyto(tu, ku)
        stage(0.5 * dt)
        f(sv, su)
        accumulate(2.0)
        stage(0.5 * dt)
        f(sv, su)
        accumulate(2.0)
        stage(dt)
        f(sv, su)
        np.add(tv, kv, out=tv)
        np.add(tu, ku, out=tu)
        np.multiply(tv, dt / 6, out=tv)
        np.add(v, tv, out=v)
        np.multiply(tu, dt / 6, out=tu)
        np.add(u, tu, out=u)
        np.greater(v, 30.0, out=spiked)
        if spiked.any():
            idx = np.flatnonzero(spiked)
            v[idx] = IZ_C
            u[idx] += IZ_D
            spike_i.append(idx)
            spike_k.append(np.full(idx.size, k))
        rec[:, k + 1] = v[:n_rec]
    return time.perf_counter() - start, rec, _cat(spike_i), _cat(spike_k)
