"""Imported once by the forkserver that forks the indexing workers (``Indexer(workers=N)``).

Running the decoding path once here loads everything it imports lazily before any worker is
forked, so every worker starts warm instead of paying that on its first file.
"""

import numpy as np
import scipy.fft  # noqa: F401 - the FFT of long files (features.power_spectrogram)

from search_engine.audio2vec.encoder import spectrogram
from search_engine.features import FeatureSettings

from .prepare import prepare  # noqa: F401 - what the workers run

spectrogram(np.sin(np.arange(16000, dtype=np.float32) * 0.1), FeatureSettings())
