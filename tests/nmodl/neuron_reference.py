"""Run a single compartment in NEURON: ``python neuron_reference.py SPEC.json OUT.npy`` (a subprocess of the tests).

SPEC: {"mechanisms": {suffix: {param: value}}, "dll": path or null, "I": uA/cm2, "tstop": ms,
"celsius": degC, "globals": {name: value}}. The section has an area of 100 um2, cm = 1 uF/cm2,
v_init = -65 mV, a constant current density from t = 0; every mechanism's TABLE is switched off
(modelgen keeps the formulas), and CVODE with tight tolerances is the reference integrator.
Writes V sampled every 0.01 ms.
"""

import json
import sys

import numpy as np
from neuron import h

spec = json.load(open(sys.argv[1]))
if spec.get("dll"):
    h.nrn_load_dll(spec["dll"])
h.load_file("stdrun.hoc")
h.celsius = spec.get("celsius", 6.3)
for name, value in spec.get("globals", {}).items():
    setattr(h, name, value)
sec = h.Section(name="soma")
sec.L = sec.diam = (100 / np.pi) ** 0.5
sec.nseg, sec.cm = 1, 1.0
for suffix, params in spec["mechanisms"].items():
    sec.insert(suffix)
    if hasattr(h, f"usetable_{suffix}"):
        setattr(h, f"usetable_{suffix}", 0)
    for p, value in params.items():
        setattr(sec(0.5), f"{p}_{suffix}", value)
stim = h.IClamp(sec(0.5))
stim.delay, stim.dur = 0, 1e9
stim.amp = spec["I"] * sec(0.5).area() * 1e-8 * 1e3  # uA/cm2 * cm2 -> nA
cvode = h.CVode()
cvode.active(1)
cvode.atol(1e-9)
v = h.Vector()
v.record(sec(0.5)._ref_v, 0.01)
h.finitialize(-65)
h.continuerun(spec["tstop"])
np.save(sys.argv[2], np.array(v))
