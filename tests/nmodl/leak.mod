COMMENT
Passive leak, as NEURON's own pas mechanism (nrn/src/nrnoc/passive.mod): i = g (v - e).
Written out for modelgen's import tests.
ENDCOMMENT

NEURON {
	SUFFIX leak
	NONSPECIFIC_CURRENT i
	RANGE g, e
}

UNITS {
	(mV) = (millivolt)
	(mA) = (milliamp)
	(S) = (siemens)
}

PARAMETER {
	g = .001 (S/cm2) <0,1e9>
	e = -70 (mV)
}

ASSIGNED { v (mV) i (mA/cm2) }

BREAKPOINT {
	i = g*(v - e)
}
