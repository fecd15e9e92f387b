"""aeradio: a learned communication link (channel autoencoder) on real radios.

Subpackages: :mod:`aeradio.learning` (transmitter LUT, neural receiver, channels,
training), :mod:`aeradio.flowgraphs` (framing, pulse shaping, synchronization, TX/RX
chains, loopback channel simulator), :mod:`aeradio.radio` (SoapySDR, ZMQ and SigMF
device backends) and :mod:`aeradio.calibration`.
"""

from aeradio.core.version import __version__

__all__ = ["__version__"]
