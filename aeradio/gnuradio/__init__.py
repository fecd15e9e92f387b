"""aeradio models inside GNU Radio (README.md, "GNU Radio").

- :mod:`aeradio.gnuradio.model`: a model directory without torch: the verified LUT, the
  neural receiver's forward pass in numpy (message log-probabilities, bit LLRs) and the
  channel noise of an Eb/N0 under aeradio's energy convention. Importable anywhere.
- :mod:`aeradio.gnuradio.blocks`: the GNU Radio blocks (LUT mapper, neural demapper, BLER
  counter); imports ``gnuradio``, so only GNU Radio's Python (Debian's
  ``/usr/bin/python3``) imports it. ``aeradio/gnuradio/grc/`` holds their GRC definitions.

A layer above :mod:`aeradio.core` and :mod:`aeradio.dsp`, beside :mod:`aeradio.apps`; it
never imports torch (an import-linter contract), and no other part of aeradio imports
``gnuradio``.
"""
