COMMENT
High-threshold calcium current with its own submembrane pool and a Nernst reversal potential
(the file reads eca and writes cai, so NEURON computes eca from cai and cao at every step):
the m^2 h gating of the L-type current of Reuveni I, Friedman A, Amitai Y, Gutnick MJ (1993)
J Neurosci 13:4609-4621 in the form of Pospischil et al. (2008) Biol Cybern 99:427-441, with the
pool of Destexhe et al. (1994) J Neurophysiol 72:803-818. Written out for modelgen's import tests.
ENDCOMMENT

NEURON {
	SUFFIX can
	USEION ca READ eca, cai WRITE ica, cai
	RANGE gbar
}

UNITS {
	(mA) = (milliamp)
	(mV) = (millivolt)
	(mM) = (milli/liter)
	(um) = (micron)
	FARADAY = (faraday) (coulomb)
}

PARAMETER {
	gbar = 0.001 (S/cm2)
	depth = 0.1 (um)
	taur = 80 (ms)
	cainf = 5e-5 (mM)
}

ASSIGNED {
	v (mV)
	eca (mV)
	ica (mA/cm2)
}

STATE { q r cai (mM) }

INITIAL {
	q = alpha_q(v)/(alpha_q(v) + beta_q(v))
	r = alpha_r(v)/(alpha_r(v) + beta_r(v))
	cai = cainf
}

BREAKPOINT {
	SOLVE states METHOD cnexp
	ica = gbar*q*q*r*(v - eca)
}

DERIVATIVE states {
	q' = alpha_q(v)*(1 - q) - beta_q(v)*q
	r' = alpha_r(v)*(1 - r) - beta_r(v)*r
	cai' = -(10000)*ica/(2*FARADAY*depth) - (cai - cainf)/taur
}

FUNCTION alpha_q(v (mV)) (/ms) {
	alpha_q = 0.055*(-27 - v)/(exp((-27 - v)/3.8) - 1)
}

FUNCTION beta_q(v (mV)) (/ms) {
	beta_q = 0.94*exp((-75 - v)/17)
}

FUNCTION alpha_r(v (mV)) (/ms) {
	alpha_r = 0.000457*exp((-13 - v)/50)
}

FUNCTION beta_r(v (mV)) (/ms) {
	beta_r = 0.0065/(exp((-15 - v)/28) + 1)
}
