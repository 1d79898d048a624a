"""The benchmark models as single-threaded numba loops written by hand: the fair rival of modelgen's numba backend.

Each model is one ``@njit`` function that runs the whole time loop inside one compiled call:
for every neuron, its state in local variables, every step in turn (no per-step Python, no
temporaries, no threads). Same equations, schemes, spike rules and return value as
baselines.py. Compiled on first use (call ``warm_up()`` before timing).
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
    hh_initial,
)
from expert_numpy import A_H, B_H, B_M, B_N
from numba import njit


@njit(cache=False, inline="always")
def _push(buf, count, i, k):
    """Append the spike (i, k) to buf (a (capacity, 2) array holding count spikes); return the buffer (grown if full)."""
    if count == buf.shape[0]:
        bigger = np.empty((2 * count, 2), dtype=np.int64)
        bigger[:count] = buf
        buf = bigger
    buf[count, 0] = i
    buf[count, 1] = k
    return buf


@njit(cache=False, inline="always")
def _hh_rates(V):
    x = -0.1 * V - 4.0
    am = x / math.expm1(x)
    x -= 1.5
    an = 0.1 * x / math.expm1(x)
    bm = B_M * math.exp(-V / 18.0)
    ah = A_H * math.exp(-0.05 * V)
    bh = 1.0 / (1.0 + B_H * math.exp(-0.1 * V))
    bn = B_N * math.exp(-0.0125 * V)
    return am, bm, ah, bh, an, bn


@njit(cache=False)
def _hh_exp_euler(V0, m0, h0, n0, i_ext, steps, dt, rec):
    buf, count = np.empty((64, 2), dtype=np.int64), 0
    for i in range(V0.size):
        V, m, h, n, drive = V0[i], m0[i], h0[i], n0[i], i_ext[i]
        was = V > 0.0
        for k in range(steps):
            am, bm, ah, bh, an, bn = _hh_rates(V)
            S = am + bm
            m = am / S + (m - am / S) * math.exp(-dt * S)
            S = ah + bh
            h = ah / S + (h - ah / S) * math.exp(-dt * S)
            S = an + bn
            n = an / S + (n - an / S) * math.exp(-dt * S)
            g_na = G_NA * m * m * m * h
            n2 = n * n
            g_k = G_K * n2 * n2
            g = g_na + g_k + G_L
            V_inf = (g_na * E_NA + g_k * E_K + G_L * E_L + drive) / g
            V = V_inf + (V - V_inf) * math.exp(-dt / C_M * g)
            above = V > 0.0
            if above and not was:
                buf = _push(buf, count, i, k)
                count += 1
            was = above
            if i < rec.shape[0]:
                rec[i, k + 1] = V
    return buf[:count]


@njit(cache=False, inline="always")
def _hh_f(V, m, h, n, drive):
    am, bm, ah, bh, an, bn = _hh_rates(V)
    n2 = n * n
    I_ion = G_NA * m * m * m * h * (V - E_NA) + G_K * n2 * n2 * (V - E_K) + G_L * (V - E_L)
    return (drive - I_ion) / C_M, am - (am + bm) * m, ah - (ah + bh) * h, an - (an + bn) * n


@njit(cache=False)
def _hh_rk4(V0, m0, h0, n0, i_ext, steps, dt, rec):
    buf, count = np.empty((64, 2), dtype=np.int64), 0
    for i in range(V0.size):
        V, m, h, n, drive = V0[i], m0[i], h0[i], n0[i], i_ext[i]
        was = V > 0.0
        for k in range(steps):
            a1, b1, c1, d1 = _hh_f(V, m, h, n, drive)
            a2, b2, c2, d2 = _hh_f(V + 0.5 * dt * a1, m + 0.5 * dt * b1, h + 0.5 * dt * c1, n + 0.5 * dt * d1, drive)
            a3, b3, c3, d3 = _hh_f(V + 0.5 * dt * a2, m + 0.5 * dt * b2, h + 0.5 * dt * c2, n + 0.5 * dt * d2, drive)
            a4, b4, c4, d4 = _hh_f(V + dt * a3, m + dt * b3, h + dt * c3, n + dt * d3, drive)
            V += dt / 6 * (a1 + 2 * a2 + 2 * a3 + a4)
            m += dt / 6 * (b1 + 2 * b2 + 2 * b3 + b4)
            h += dt / 6 * (c1 + 2 * c2 + 2 * c3 + c4)
            n += dt / 6 * (d1 + 2 * d2 + 2 * d3 + d4)
            above = V > 0.0
            if above and not was:
                buf = _push(buf, count, i, k)
                count += 1
            was = above
            if i < rec.shape[0]:
                rec[i, k + 1] = V
    return buf[:count]


@njit(cache=False)
def _lif(i_ext, steps, dt, rec):
    buf, count = np.empty((64, 2), dtype=np.int64), 0
    ref_steps = round(LIF_T_REF / dt)
    syn_decay = math.exp(-dt / LIF_TAU_SYN)
    for i in range(i_ext.size):
        V, g_syn, drive, until = LIF_E_L, 0.0, i_ext[i], 0
        for k in range(steps):
            g_syn *= syn_decay
            if k >= until:  # refractory neurons hold V
                g = LIF_G_L + g_syn
                V_inf = (LIF_G_L * LIF_E_L + g_syn * LIF_E_SYN + drive) / g
                V = V_inf + (V - V_inf) * math.exp(-dt / LIF_C * g)
                if V > LIF_V_TH:
                    V = LIF_V_RESET
                    until = k + 1 + ref_steps
                    buf = _push(buf, count, i, k)
                    count += 1
            if i < rec.shape[0]:
                rec[i, k + 1] = V
    return buf[:count]


@njit(cache=False)
def _izhikevich(i_in, steps, dt, rec):
    buf, count = np.empty((64, 2), dtype=np.int64), 0
    for i in range(i_in.size):
        v, drive = -65.0, i_in[i]
        u = IZ_B * v
        for k in range(steps):
            k1v, k1u = (0.04 * v + 5.0) * v + 140.0 - u + drive, IZ_A * (IZ_B * v - u)
            v2, u2 = v + 0.5 * dt * k1v, u + 0.5 * dt * k1u
            k2v, k2u = (0.04 * v2 + 5.0) * v2 + 140.0 - u2 + drive, IZ_A * (IZ_B * v2 - u2)
            v3, u3 = v + 0.5 * dt * k2v, u + 0.5 * dt * k2u
            k3v, k3u = (0.04 * v3 + 5.0) * v3 + 140.0 - u3 + drive, IZ_A * (IZ_B * v3 - u3)
            v4, u4 = v + dt * k3v, u + dt * k3u
            k4v, k4u = (0.04 * v4 + 5.0) * v4 + 140.0 - u4 + drive, IZ_A * (IZ_B * v4 - u4)
            v += dt / 6 * (k1v + 2 * k2v + 2 * k3v + k4v)
            u += dt / 6 * (k1u + 2 * k2u + 2 * k3u + k4u)
            if v > 30.0:
                v = IZ_C
                u += IZ_D
                buf = _push(buf, count, i, k)
                count += 1
            if i < rec.shape[0]:
                rec[i, k + 1] = v
    return buf[:count]


def _result(start, rec, spikes):
    seconds = time.perf_counter() - start
    order = np.lexsort((spikes[:, 0], spikes[:, 1]))  # by step, then neuron (as the other versions)
    return seconds, rec, spikes[order, 0], spikes[order, 1]


def _rec(n_rec, steps, V0):
    rec = np.empty((n_rec, steps + 1))
    rec[:, 0] = V0
    return rec


def hh_exponential_euler(n, steps, dt, i_ext, n_rec=1):
    """Exponential Euler: the gates from V(t), then V with the new gates (as NEURON does)."""
    y = hh_initial(n)
    i_ext = np.ascontiguousarray(np.broadcast_to(i_ext, (n,)), dtype=float)
    rec = _rec(n_rec, steps, -65.0)
    start = time.perf_counter()
    return _result(start, rec, _hh_exp_euler(*y, i_ext, steps, dt, rec))


def hh_rk4(n, steps, dt, i_ext, n_rec=1):
    """The classic four-stage Runge-Kutta scheme on (V, m, h, n)."""
    y = hh_initial(n)
    i_ext = np.ascontiguousarray(np.broadcast_to(i_ext, (n,)), dtype=float)
    rec = _rec(n_rec, steps, -65.0)
    start = time.perf_counter()
    return _result(start, rec, _hh_rk4(*y, i_ext, steps, dt, rec))


def lif(n, steps, dt, i_ext, n_rec=1):
    """Exponential Euler (exact for a fixed conductance), threshold, reset and refractory period."""
    i_ext = np.ascontiguousarray(np.broadcast_to(i_ext, (n,)), dtype=float)
    rec = _rec(n_rec, steps, LIF_E_L)
    start = time.perf_counter()
    return _result(start, rec, _lif(i_ext, steps, dt, rec))


def izhikevich(n, steps, dt, i_in, n_rec=1):
    """RK4 on (v, u); spike when v > 30 mV: v = c, u += d."""
    i_in = np.ascontiguousarray(np.broadcast_to(i_in, (n,)), dtype=float)
    rec = _rec(n_rec, steps, -65.0)
    start = time.perf_counter()
    return _result(start, rec, _izhikevich(i_in, steps, dt, rec))


def warm_up() -> None:
    """Compile every loop (a short run of each), so that timings leave compilation out."""
    for fn, drive in ((hh_exponential_euler, 10.0), (hh_rk4, 10.0), (lif, 300.0), (izhikevich, 10.0)):
        fn(2, 2, 0.01, np.array([drive, drive]), n_rec=2)
