COMMENT
Persistent sodium current, Boltzmann activation with a voltage-dependent time constant, in the
form of Nap_Et2.mod of Hay E, Hill S, Schuermann F, Markram H, Segev I (2011) PLoS Comput Biol
7:e1002107 (ModelDB 139653), after Magistretti J, Alonso A (1999) J Gen Physiol 114:491-509;
vtrap-type rates written with an explicit |x| < 1e-6 guard. Written out for modelgen's import tests.
ENDCOMMENT

NEURON {
	SUFFIX nap
	USEION na READ ena WRITE ina
	RANGE gNap_Et2bar
}

UNITS {
	(S) = (siemens)
	(mV) = (millivolt)
	(mA) = (milliamp)
}

PARAMETER {
	gNap_Et2bar = 0.0001 (S/cm2)
}

ASSIGNED {
	v (mV)
	celsius (degC)
	ena (mV)
	ina (mA/cm2)
	mInf
	mTau (ms)
	hInf
	hTau (ms)
	qt
}

STATE { m h }

BREAKPOINT {
	SOLVE states METHOD cnexp
	ina = gNap_Et2bar*m*m*m*h*(v - ena)
}

DERIVATIVE states {
	rates()
	m' = (mInf - m)/mTau
	h' = (hInf - h)/hTau
}

INITIAL {
	rates()
	m = mInf
	h = hInf
}

PROCEDURE rates() {
	LOCAL mAlpha, mBeta, hAlpha, hBeta
	qt = 2.3^((celsius - 21)/10)
	mInf = 1.0/(1 + exp((v - -52.6)/-4.6))
	mAlpha = 0.182 * vtrap(-(v + 38), 6)
	mBeta = 0.124 * vtrap(v + 38, 6)
	mTau = 6/(mAlpha + mBeta)/qt
	hInf = 1.0/(1 + exp((v - -48.8)/10))
	hAlpha = 2.88e-6 * vtrap(v + 17, 4.63)
	hBeta = 6.94e-6 * vtrap(-(v + 64.4), 2.63)
	hTau = 1/(hAlpha + hBeta)/qt
}

FUNCTION vtrap(x, y) {
	if (fabs(x/y) < 1e-6) {
		vtrap = y*(1 - x/y/2)
	} else {
		vtrap = x/(exp(x/y) - 1)
	}
}
