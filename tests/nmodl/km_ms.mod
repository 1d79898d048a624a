COMMENT
Slow voltage-dependent non-inactivating potassium current (M-current) in the form of km.mod
of Mainen ZF, Sejnowski TJ (1996) Nature 382:363-366 (ModelDB 2488). Written out for
modelgen's import tests.
ENDCOMMENT

NEURON {
	SUFFIX km_ms
	USEION k READ ek WRITE ik
	RANGE n, gk, gbar
}

UNITS {
	(mA) = (milliamp)
	(mV) = (millivolt)
	(pS) = (picosiemens)
	(um) = (micron)
}

PARAMETER {
	gbar = 10 (pS/um2)
	tha = -30 (mV)
	qa = 9 (mV)
	Ra = 0.001 (/ms)
	Rb = 0.001 (/ms)
	temp = 23 (degC)
	q10 = 2.3
}

ASSIGNED {
	v (mV)
	celsius (degC)
	ik (mA/cm2)
	ek (mV)
	ninf
	ntau (ms)
	tadj
}

STATE { n }

INITIAL {
	rates(v)
	n = ninf
}

BREAKPOINT {
	SOLVE states METHOD cnexp
	ik = (1e-4) * tadj * gbar * n * (v - ek)
}

DERIVATIVE states {
	rates(v)
	n' = (ninf - n)/ntau
}

PROCEDURE rates(v (mV)) {
	LOCAL a, b
	tadj = q10^((celsius - temp)/10)
	a = Ra * (v - tha) / (1 - exp(-(v - tha)/qa))
	b = -Rb * (v - tha) / (1 - exp((v - tha)/qa))
	ntau = 1/tadj/(a + b)
	ninf = a/(a + b)
}
