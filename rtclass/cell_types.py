"""The cell types rtclass labels and the sizes of the C4 input that labels them: one definition,
used by the wire format, the features, the classifier and the simulator. Imports nothing, so a
decoder that reads the wire format stays light."""

#: C4's cerebellar cell types, in the order of the wire format's ``cell_type`` code (1..5)
CELL_TYPES = ("PkC_ss", "PkC_cs", "MLI", "GoC", "MFB")
#: what a unit without a label is called; its wire code is 0
UNLABELED = "unlabeled"
#: wire ``cell_type`` code -> name
CELL_TYPE_NAMES = (UNLABELED, *CELL_TYPES)
#: the class index order of C4's published models (npyx: 0 GoC, 1 MLI, 2 MFB, 3 PkC_ss, 4 PkC_cs)
C4_CLASS_ORDER = ("GoC", "MLI", "MFB", "PkC_ss", "PkC_cs")

#: C4's input layout: 10 firing-rate bins x (a zero column + 100 log-spaced lags) of 3D-ACG, and a
#: 90-sample peak-channel waveform
N_RATE_BINS = 10
N_LOG_LAGS = 100
#: the log-spaced lags run from 10**0 to 10**3 ms
LOG_LAG_DECADES = (0, 3)
WAVEFORM_SAMPLES = 90
