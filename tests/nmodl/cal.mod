COMMENT
High-threshold (L-type) calcium current with a Goldman-Hodgkin-Katz driving force, in the form
of cal2.mod of Migliore M, Cook EP, Jaffe DB, Turner DA, Johnston D (1995) Computer simulations
of morphologically reconstructed CA3 hippocampal neurons. J Neurophysiol 73:1157-1168
(ModelDB 3263): ghk() with efun() guarding its removable 0/0, FARADAY and R from the UNITS
block. Written out for modelgen's import tests.
ENDCOMMENT

NEURON {
	SUFFIX cal
	USEION ca READ cai, cao WRITE ica
	RANGE gcalbar
}

UNITS {
	(mA) = (milliamp)
	(mV) = (millivolt)
	(mM) = (milli/liter)
	FARADAY = (faraday) (coulomb)
	R = (k-mole) (joule/degC)
}

PARAMETER {
	gcalbar = 0.003 (mho/cm2)
	ki = 0.001 (mM)
	tfa = 5
}

ASSIGNED {
	v (mV)
	celsius (degC)
	cai (mM)
	cao (mM)
	ica (mA/cm2)
	minf
	taum (ms)
}

STATE { m }

INITIAL {
	rates(v)
	m = minf
}

BREAKPOINT {
	SOLVE states METHOD cnexp
	ica = gcalbar*m*m*h2(cai)*ghk(v, cai, cao)
}

DERIVATIVE states {
	rates(v)
	m' = (minf - m)/taum
}

FUNCTION h2(cai (mM)) {
	h2 = ki/(ki + cai)
}

FUNCTION ghk(v (mV), ci (mM), co (mM)) (mV) {
	LOCAL nu, f
	f = KTF(celsius)/2
	nu = v/f
	ghk = -f*(1. - (ci/co)*exp(nu))*efun(nu)
}

FUNCTION KTF(celsius (degC)) (mV) {
	KTF = ((25./293.15)*(celsius + 273.15))
}

FUNCTION efun(z) {
	if (fabs(z) < 1e-4) {
		efun = 1 - z/2
	} else {
		efun = z/(exp(z) - 1)
	}
}

FUNCTION alp(v (mV)) (1/ms) {
	alp = 15.69*(-1.0*v + 81.5)/(exp((-1.0*v + 81.5)/10.0) - 1.0)
}

FUNCTION bet(v (mV)) (1/ms) {
	bet = 0.29*exp(-v/10.86)
}

PROCEDURE rates(v (mV)) {
	LOCAL a
	a = alp(v)
	taum = 1/(tfa*(a + bet(v)))
	minf = tfa*a*taum
}
