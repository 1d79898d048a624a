COMMENT
Submembrane calcium pool: entry through the calcium current into a shell of depth `depth`,
first-order removal towards cainf with time constant taur, inward flux only.
Destexhe A, Contreras D, Sejnowski TJ, Steriade M (1994) A model of spindle rhythmicity in the
isolated thalamic reticular nucleus. J Neurophysiol 72:803-818 (cad.mod, ModelDB 3343).
Written out for modelgen's import tests.
ENDCOMMENT

NEURON {
	SUFFIX cad
	USEION ca READ ica, cai WRITE cai
	RANGE depth, cainf, taur
}

UNITS {
	(molar) = (1/liter)
	(mM) = (millimolar)
	(um) = (micron)
	(mA) = (milliamp)
	(msM) = (ms mM)
	FARADAY = (faraday) (coulomb)
}

PARAMETER {
	depth = 0.1 (um)
	taur = 200 (ms)
	cainf = 100e-6 (mM)
}

STATE { cai (mM) }

INITIAL {
	cai = cainf
}

ASSIGNED {
	ica (mA/cm2)
	drive_channel (mM/ms)
}

BREAKPOINT {
	SOLVE state METHOD derivimplicit
}

DERIVATIVE state {
	drive_channel = -(10000) * ica / (2 * FARADAY * depth)
	if (drive_channel <= 0.) { drive_channel = 0. }
	cai' = drive_channel + (cainf - cai)/taur
}
