COMMENT
Delayed-rectifier potassium channel in the form of kv.mod of Mainen ZF, Sejnowski TJ (1996)
Nature 382:363-366 (ModelDB 2488): n gate with rates a, b, q10 adjustment, pS/um2.
Written out for modelgen's import tests.
ENDCOMMENT

NEURON {
	SUFFIX kv_ms
	USEION k READ ek WRITE ik
	RANGE n, gk, gbar
	GLOBAL ninf, ntau
}

UNITS {
	(mA) = (milliamp)
	(mV) = (millivolt)
	(pS) = (picosiemens)
	(um) = (micron)
}

PARAMETER {
	gbar = 300 (pS/um2)
	tha = 25 (mV)
	qa = 9 (mV)
	Ra = 0.02 (/ms)
	Rb = 0.002 (/ms)
	temp = 23 (degC)
	q10 = 2.3
}

ASSIGNED {
	v (mV)
	celsius (degC)
	ik (mA/cm2)
	gk (pS/um2)
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
	gk = tadj*gbar*n
	ik = (1e-4) * gk * (v - ek)
}

DERIVATIVE states {
	rates(v)
	n' = (ninf - n)/ntau
}

PROCEDURE rates(v (mV)) {
	LOCAL a, b
	TABLE ninf, ntau DEPEND celsius FROM -100 TO 100 WITH 200
	tadj = q10^((celsius - temp)/10)
	a = Ra * (v - tha) / (1 - exp(-(v - tha)/qa))
	b = -Rb * (v - tha) / (1 - exp((v - tha)/qa))
	ntau = 1/tadj/(a + b)
	ninf = a/(a + b)
}
