COMMENT
Hyperpolarisation-activated cation current (HCN), in the form of Ih.mod of
Kole MHP, Hallermann S, Stuart GJ (2006) Single Ih channels in pyramidal neuron dendrites:
properties, distribution, and impact on action potential output. J Neurosci 26:1677-1687
(ModelDB 97263, as used by Hay et al. 2011): a linear-exponential rate with a removable 0/0.
Written out for modelgen's import tests.
ENDCOMMENT

NEURON {
	SUFFIX Ih
	NONSPECIFIC_CURRENT ihcn
	RANGE gIhbar, gIh, ihcn
}

UNITS {
	(S) = (siemens)
	(mV) = (millivolt)
	(mA) = (milliamp)
}

PARAMETER {
	gIhbar = 0.0002 (S/cm2)
	ehcn = -45.0 (mV)
}

ASSIGNED {
	v (mV)
	ihcn (mA/cm2)
	gIh (S/cm2)
	mInf
	mTau (ms)
	mAlpha (/ms)
	mBeta (/ms)
}

STATE { m }

BREAKPOINT {
	SOLVE states METHOD cnexp
	gIh = gIhbar*m
	ihcn = gIh*(v - ehcn)
}

DERIVATIVE states {
	rates()
	m' = (mInf - m)/mTau
}

INITIAL {
	rates()
	m = mInf
}

PROCEDURE rates() {
	UNITSOFF
	mAlpha = 0.001*6.43*(v + 154.9)/(exp((v + 154.9)/11.9) - 1)
	mBeta = 0.001*193*exp(v/33.1)
	mInf = mAlpha/(mAlpha + mBeta)
	mTau = 1/(mAlpha + mBeta)
	UNITSON
}
