"""Constants shared by the whole sample path."""

import numpy as np

#: The one dtype of samples and symbols on the sample path.
SAMPLE_DTYPE = np.complex64
