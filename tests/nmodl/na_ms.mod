COMMENT
Sodium channel, Hodgkin-Huxley style kinetics, in the form of na.mod of
Mainen ZF, Sejnowski TJ (1996) Influence of dendritic structure on firing pattern in model
neocortical neurons. Nature 382:363-366 (ModelDB 2488): trap0 rates, q10 temperature
adjustment, conductance in pS/um2. Written out for modelgen's import tests.
ENDCOMMENT

NEURON {
	SUFFIX na_ms
	USEION na READ ena WRITE ina
	RANGE m, h, gna, gbar
	GLOBAL tha, thi1, thi2, qa, qi, qinf, thinf, minf, hinf, mtau, htau
}

UNITS {
	(mA) = (milliamp)
	(mV) = (millivolt)
	(pS) = (picosiemens)
	(um) = (micron)
}

PARAMETER {
	gbar = 1000 (pS/um2)
	vshift = -5 (mV)
	tha = -35 (mV)
	qa = 9 (mV)
	Ra = 0.182 (/ms)
	Rb = 0.124 (/ms)
	thi1 = -50 (mV)
	thi2 = -75 (mV)
	qi = 5 (mV)
	thinf = -65 (mV)
	qinf = 6.2 (mV)
	Rg = 0.0091 (/ms)
	Rd = 0.024 (/ms)
	temp = 23 (degC)
	q10 = 2.3
}

ASSIGNED {
	v (mV)
	celsius (degC)
	ina (mA/cm2)
	gna (pS/um2)
	ena (mV)
	minf
	hinf
	mtau (ms)
	htau (ms)
	tadj
}

STATE { m h }

INITIAL {
	trates(v + vshift)
	m = minf
	h = hinf
}

BREAKPOINT {
	SOLVE states METHOD cnexp
	gna = tadj*gbar*m*m*m*h
	ina = (1e-4) * gna * (v - ena)
}

DERIVATIVE states {
	trates(v + vshift)
	m' = (minf - m)/mtau
	h' = (hinf - h)/htau
}

PROCEDURE trates(vm (mV)) {
	LOCAL a, b
	TABLE minf, hinf, mtau, htau DEPEND celsius FROM -100 TO 100 WITH 200
	tadj = q10^((celsius - temp)/10)
	a = trap0(vm, tha, Ra, qa)
	b = trap0(-vm, -tha, Rb, qa)
	mtau = 1/tadj/(a + b)
	minf = a/(a + b)
	a = trap0(vm, thi1, Rd, qi)
	b = trap0(-vm, -thi2, Rg, qi)
	htau = 1/tadj/(a + b)
	hinf = 1/(1 + exp((vm - thinf)/qinf))
}

FUNCTION trap0(v, th, a, q) {
	if (fabs(v/th) > 1e-6) {
		trap0 = a * (v - th) / (1 - exp(-(v - th)/q))
	} else {
		trap0 = a * q
	}
}
