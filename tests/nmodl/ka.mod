COMMENT
A-type (transient) potassium current, steady states and time constants in the style of
Connor JA, Stevens CF (1971) J Physiol 213:31-53 as tabulated in Dayan P, Abbott LF (2001)
Theoretical Neuroscience, ch. 6 (a^3 b), with an if/else floor on the inactivation time
constant as in kaprox.mod of Migliore M et al. (1999) J Comput Neurosci 7:5-15 (ModelDB 2796).
Written out for modelgen's import tests.
ENDCOMMENT

NEURON {
	SUFFIX ka
	USEION k READ ek WRITE ik
	RANGE gbar
}

UNITS {
	(mA) = (milliamp)
	(mV) = (millivolt)
	(S) = (siemens)
}

PARAMETER {
	gbar = 0.0477 (S/cm2)
	taubmin = 2 (ms)
}

ASSIGNED {
	v (mV)
	ik (mA/cm2)
	ek (mV)
	ainf
	binf
	atau (ms)
	btau (ms)
}

STATE { a b }

INITIAL {
	rates(v)
	a = ainf
	b = binf
}

BREAKPOINT {
	SOLVE states METHOD cnexp
	ik = gbar*a*a*a*b*(v - ek)
}

DERIVATIVE states {
	rates(v)
	a' = (ainf - a)/atau
	b' = (binf - b)/btau
}

PROCEDURE rates(v (mV)) {
	ainf = (0.0761*exp((v + 94.22)/31.84)/(1 + exp((v + 1.17)/28.93)))^(1/3)
	atau = 0.3632 + 1.158/(1 + exp((v + 55.96)/20.12))
	binf = 1/(1 + exp((v + 53.3)/14.54))^4
	btau = 1.24 + 2.678/(1 + exp((v + 50)/16.027))
	if (btau < taubmin) {
		btau = taubmin
	}
}
