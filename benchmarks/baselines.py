"""Plain numpy implementations of the benchmark models: what a careful scientist writes without modelgen.

Each function simulates ``steps`` steps of ``n`` neurons with the same equations, scheme and
spike rules as the modelgen model it stands for, records V of neuron 0 after every step and
counts spikes. They use numpy arrays and operators in the obvious way: readable, vectorised
over neurons, allocating temporaries. Units: mV, ms, and the model's own units otherwise.

Every function returns ``(seconds in the time loop, V of the recorded neurons (n_rec, steps + 1),
spike neuron indices, spike step indices)``.
"""

from __future__ import annotations

import time

import numpy as np

# ------------------------------------------------------------------ Hodgkin-Huxley (hh.model)
G_NA, G_K, G_L, E_NA, E_K, E_L, C_M = 120.0, 36.0, 0.3, 50.0, -77.0, -54.387, 1.0


def hh_rates(V):
    alpha_m = 0.1 * (V + 40) / (1 - np.exp(-(V + 40) / 10))
    beta_m = 4 * np.exp(-(V + 65) / 18)
    alpha_h = 0.07 * np.exp(-(V + 65) / 20)
    beta_h = 1 / (1 + np.exp(-(V + 35) / 10))
    alpha_n = 0.01 * (V + 55) / (1 - np.exp(-(V + 55) / 10))
    beta_n = 0.125 * np.exp(-(V + 65) / 80)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def hh_initial(n):
    V = np.full(n, -65.0)
    am, bm, ah, bh, an, bn = hh_rates(V)
    return V, am / (am + bm), ah / (ah + bh), an / (an + bn)


def hh_exponential_euler(n, steps, dt, i_ext, n_rec=1):
    """Exponential Euler: the gates from V(t), then V with the new gates (as NEURON does)."""
    V, m, h, nk = hh_initial(n)
    rec = np.empty((n_rec, steps + 1))
    rec[:, 0] = V[:n_rec]
    was_above = V > 0
    spike_i, spike_k = [], []
    start = time.perf_counter()
    for k in range(steps):
        am, bm, ah, bh, an, bn = hh_rates(V)
        # each gate relaxes to x_inf = a/(a + b) with time constant 1/(a + b)
        m_inf, tau_m = am / (am + bm), 1 / (am + bm)
        h_inf, tau_h = ah / (ah + bh), 1 / (ah + bh)
        n_inf, tau_n = an / (an + bn), 1 / (an + bn)
        m = m_inf + (m - m_inf) * np.exp(-dt / tau_m)
        h = h_inf + (h - h_inf) * np.exp(-dt / tau_h)
        nk = n_inf + (nk - n_inf) * np.exp(-dt / tau_n)
        # V relaxes to the conductance-weighted mean of the reversal potentials
        g_na = G_NA * m**3 * h
        g_k = G_K * nk**4
        g = g_na + g_k + G_L
        V_inf = (g_na * E_NA + g_k * E_K + G_L * E_L + i_ext) / g
        V = V_inf + (V - V_inf) * np.exp(-dt * g / C_M)
        above = V > 0
        spiked = np.flatnonzero(above & ~was_above)
        was_above = above
        if spiked.size:
            spike_i.append(spiked)
            spike_k.append(np.full(spiked.size, k))
        rec[:, k + 1] = V[:n_rec]
    return time.perf_counter() - start, rec, _cat(spike_i), _cat(spike_k)


def hh_derivatives(V, m, h, nk, i_ext):
    am, bm, ah, bh, an, bn = hh_rates(V)
    I_ion = G_NA * m**3 * h * (V - E_NA) + G_K * nk**4 * (V - E_K) + G_L * (V - E_L)
    return (
        (i_ext - I_ion) / C_M,
        am * (1 - m) - bm * m,
        ah * (1 - h) - bh * h,
        an * (1 - nk) - bn * nk,
    )


def hh_rk4(n, steps, dt, i_ext, n_rec=1):
    """The classic four-stage Runge-Kutta scheme on (V, m, h, n)."""
    y = list(hh_initial(n))
    rec = np.empty((n_rec, steps + 1))
    rec[:, 0] = y[0][:n_rec]
    was_above = y[0] > 0
    spike_i, spike_k = [], []
    start = time.perf_counter()
    for k in range(steps):
        k1 = hh_derivatives(*y, i_ext)
        k2 = hh_derivatives(*[x + 0.5 * dt * d for x, d in zip(y, k1)], i_ext)
        k3 = hh_derivatives(*[x + 0.5 * dt * d for x, d in zip(y, k2)], i_ext)
        k4 = hh_derivatives(*[x + dt * d for x, d in zip(y, k3)], i_ext)
        y = [x + dt / 6 * (a + 2 * b + 2 * c + d) for x, a, b, c, d in zip(y, k1, k2, k3, k4)]
        above = y[0] > 0
        spiked = np.flatnonzero(above & ~was_above)
        was_above = above
        if spiked.size:
            spike_i.append(spiked)
            spike_k.append(np.full(spiked.size, k))
        rec[:, k + 1] = y[0][:n_rec]
    return time.perf_counter() - start, rec, _cat(spike_i), _cat(spike_k)


# ------------------------------------------------------------------ LIF (lif.model)
# pF, nS, pA, mV, ms: pA/pF = mV/ms
LIF_C, LIF_G_L, LIF_E_L, LIF_V_TH, LIF_V_RESET, LIF_T_REF, LIF_E_SYN, LIF_TAU_SYN = (
    200.0,
    10.0,
    -65.0,
    -50.0,
    -65.0,
    2.0,
    0.0,
    5.0,
)


def lif(n, steps, dt, i_ext, n_rec=1):
    """Exponential Euler (exact for a fixed conductance), threshold, reset and refractory period."""
    V = np.full(n, LIF_E_L)
    g_syn = np.zeros(n)
    refractory_until = np.zeros(n, dtype=np.int64)
    ref_steps = int(round(LIF_T_REF / dt))
    syn_decay = np.exp(-dt / LIF_TAU_SYN)
    rec = np.empty((n_rec, steps + 1))
    rec[:, 0] = V[:n_rec]
    spike_i, spike_k = [], []
    start = time.perf_counter()
    for k in range(steps):
        refractory = k < refractory_until
        g_syn = g_syn * syn_decay
        g = LIF_G_L + g_syn
        V_inf = (LIF_G_L * LIF_E_L + g_syn * LIF_E_SYN + i_ext) / g
        V_new = V_inf + (V - V_inf) * np.exp(-dt * g / LIF_C)
        V = np.where(refractory, V, V_new)
        spiked = (V > LIF_V_TH) & ~refractory
        V[spiked] = LIF_V_RESET
        refractory_until[spiked] = k + 1 + ref_steps
        idx = np.flatnonzero(spiked)
        if idx.size:
            spike_i.append(idx)
            spike_k.append(np.full(idx.size, k))
        rec[:, k + 1] = V[:n_rec]
    return time.perf_counter() - start, rec, _cat(spike_i), _cat(spike_k)


# ------------------------------------------------------------------ Izhikevich (izhikevich.model)
IZ_A, IZ_B, IZ_C, IZ_D = 0.02, 0.2, -65.0, 8.0


def izhikevich(n, steps, dt, i_in, n_rec=1):
    """RK4 on (v, u); spike when v > 30 mV: v = c, u += d."""
    v = np.full(n, -65.0)
    u = IZ_B * v

    def f(v, u):
        return 0.04 * v**2 + 5 * v + 140 - u + i_in, IZ_A * (IZ_B * v - u)

    rec = np.empty((n_rec, steps + 1))
    rec[:, 0] = v[:n_rec]
    spike_i, spike_k = [], []
    start = time.perf_counter()
    for k in range(steps):
        k1v, k1u = f(v, u)
        k2v, k2u = f(v + 0.5 * dt * k1v, u + 0.5 * dt * k1u)
        k3v, k3u = f(v + 0.5 * dt * k2v, u + 0.5 * dt * k2u)
        k4v, k4u = f(v + dt * k3v, u + dt * k3u)
        v = v + dt / 6 * (k1v + 2 * k2v + 2 * k3v + k4v)
        u = u + dt / 6 * (k1u + 2 * k2u + 2 * k3u + k4u)
        spiked = v > 30
        v[spiked] = IZ_C
        u[spiked] += IZ_D
        idx = np.flatnonzero(spiked)
        if idx.size:
            spike_i.append(idx)
            spike_k.append(np.full(idx.size, k))
        rec[:, k + 1] = v[:n_rec]
    return time.perf_counter() - start, rec, _cat(spike_i), _cat(spike_k)


# ------------------------------------------------------------------ CUBA network (cuba.network)
def cuba(V0, indptr, indices, weights, excitatory, steps, dt, tau_m=20.0, tau_e=5.0, tau_i=10.0, n_rec=1):
    """Brette et al. 2007 benchmark 2: exact integration of V, v_e, v_i; CSR delivery to the next step.

    ``indptr, indices, weights`` is the whole network's connectivity (sources in rows); a
    spike of an excitatory source raises v_e of its targets, of an inhibitory one v_i.
    Returns also the number of synaptic events.
    """
    E_L, V_th, V_reset, t_ref = -49.0, -50.0, -60.0, 5.0
    n = V0.size
    V, v_e, v_i = V0.copy(), np.zeros(n), np.zeros(n)
    a_m, a_e, a_i = np.exp(-dt / tau_m), np.exp(-dt / tau_e), np.exp(-dt / tau_i)
    p_e = tau_e / (tau_m - tau_e) * (a_m - a_e)  # response of V to v_e over one step
    p_i = tau_i / (tau_m - tau_i) * (a_m - a_i)
    ref_steps = int(round(t_ref / dt))
    refractory_until = np.zeros(n, dtype=np.int64)
    rec = np.empty((n_rec, steps + 1))
    rec[:, 0] = V[:n_rec]
    spike_i, spike_k = [], []
    events = 0
    start = time.perf_counter()
    for k in range(steps):
        refractory = k < refractory_until
        V_new = E_L + (V - E_L) * a_m + p_e * v_e + p_i * v_i
        v_e = v_e * a_e
        v_i = v_i * a_i
        V = np.where(refractory, V, V_new)
        spiked = np.flatnonzero((V > V_th) & ~refractory)
        V[spiked] = V_reset
        refractory_until[spiked] = k + 1 + ref_steps
        if spiked.size:
            spike_i.append(spiked)
            spike_k.append(np.full(spiked.size, k))
            # deliver: the targets of every spiking source, with their weights
            pos, exc = _synapses_of(indptr, excitatory, spiked)
            targets, w = indices[pos], weights[pos]
            v_e += np.bincount(targets[exc], w[exc], minlength=n)
            v_i += np.bincount(targets[~exc], w[~exc], minlength=n)
            events += pos.size
        rec[:, k + 1] = V[:n_rec]
    return time.perf_counter() - start, rec, _cat(spike_i), _cat(spike_k), events


# ------------------------------------------------------------------ COBA network (coba.network)
def coba(V0, g_e0, g_i0, indptr, indices, weights, excitatory, steps, dt, n_rec=1):
    """Brette et al. 2007 benchmark 1: exponential Euler (the conductances decay exactly, then V relaxes
    towards its conductance-weighted equilibrium with them frozen over the step); CSR delivery to the next step.

    Units: mV, ms, nS (conductances and ``weights``), pF. ``indptr, indices, weights`` is the whole
    network's connectivity (sources in rows); a spike of an excitatory source raises g_e of its
    targets, of an inhibitory one g_i. Returns also the number of synaptic events.
    """
    C, g_L, E_L, E_e, E_i = 200.0, 10.0, -60.0, 0.0, -80.0
    V_th, V_reset, t_ref, tau_e, tau_i = -50.0, -60.0, 5.0, 5.0, 10.0
    n = V0.size
    V, g_e, g_i = V0.copy(), g_e0.copy(), g_i0.copy()
    a_e, a_i = np.exp(-dt / tau_e), np.exp(-dt / tau_i)
    ref_steps = int(round(t_ref / dt))
    refractory_until = np.zeros(n, dtype=np.int64)
    rec = np.empty((n_rec, steps + 1))
    rec[:, 0] = V[:n_rec]
    spike_i, spike_k = [], []
    events = 0
    start = time.perf_counter()
    for k in range(steps):
        refractory = k < refractory_until
        g_e *= a_e
        g_i *= a_i
        g = g_L + g_e + g_i
        V_inf = (g_L * E_L + g_e * E_e + g_i * E_i) / g
        V_new = V_inf + (V - V_inf) * np.exp(-dt / C * g)
        V = np.where(refractory, V, V_new)
        spiked = np.flatnonzero((V > V_th) & ~refractory)
        V[spiked] = V_reset
        refractory_until[spiked] = k + 1 + ref_steps
        if spiked.size:
            spike_i.append(spiked)
            spike_k.append(np.full(spiked.size, k))
            pos, exc = _synapses_of(indptr, excitatory, spiked)
            targets, w = indices[pos], weights[pos]
            g_e += np.bincount(targets[exc], w[exc], minlength=n)
            g_i += np.bincount(targets[~exc], w[~exc], minlength=n)
            events += pos.size
        rec[:, k + 1] = V[:n_rec]
    return time.perf_counter() - start, rec, _cat(spike_i), _cat(spike_k), events


def _synapses_of(indptr, excitatory, spiked):
    """Return the positions in a CSR of the synapses of the sources ``spiked``, and which of them are excitatory."""
    counts = indptr[spiked + 1] - indptr[spiked]
    pos = np.repeat(indptr[spiked] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    return pos, np.repeat(excitatory[spiked], counts)


def _cat(parts):
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
