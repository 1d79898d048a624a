COMMENT
Calcium-dependent potassium current (slow AHP): m = alpha(cai)/(alpha(cai) + beta), in the
form of kca.mod of Destexhe A, Contreras D, Sejnowski TJ, Steriade M (1994) J Neurophysiol
72:803-818 (ModelDB 3343), with a q10 temperature factor. Written out for modelgen's import tests.
ENDCOMMENT

NEURON {
	SUFFIX kca
	USEION k READ ek WRITE ik
	USEION ca READ cai
	RANGE gkbar
}

UNITS {
	(mA) = (milliamp)
	(mV) = (millivolt)
	(mM) = (milli/liter)
}

PARAMETER {
	gkbar = 0.01 (mho/cm2)
	beta = 0.03 (1/ms)
	cac = 0.025 (mM)
	taumin = 0.5 (ms)
}

ASSIGNED {
	v (mV)
	celsius (degC)
	ek (mV)
	cai (mM)
	ik (mA/cm2)
	m_inf
	tau_m (ms)
	tadj
}

STATE { m }

BREAKPOINT {
	SOLVE states METHOD cnexp
	ik = gkbar*m*m*(v - ek)
}

DERIVATIVE states {
	evaluate_fct(v, cai)
	m' = (m_inf - m)/tau_m
}

INITIAL {
	evaluate_fct(v, cai)
	m = m_inf
}

PROCEDURE evaluate_fct(v (mV), cai (mM)) {
	LOCAL car
	tadj = 3^((celsius - 22.0)/10)
	car = (cai/cac)^2
	m_inf = car/(1 + car)
	tau_m = 1/beta/(1 + car)/tadj
	if (tau_m < taumin) { tau_m = taumin }
}
