"""Pure numpy (and numba) DSP. Importing it first sets where numba caches kernels (:mod:`aeradio.dsp.jit`)."""

from aeradio.dsp import jit as _jit  # noqa: F401  (before any kernel is defined)
