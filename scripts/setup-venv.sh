#!/usr/bin/env bash
# Creates .venv (when missing), installs aeradio with its dev tools into it, makes
# Debian's SoapySDR bindings (python3-soapysdr, not on PyPI) importable from the venv,
# installs Debian's GNU Radio for its own /usr/bin/python3 (scripts/install-gnuradio.sh) and
# Debian's chromium + chromium-driver (the tests of the rx --monitor page).
# Used by `make demo` and `make test`: on a fresh machine nothing else is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
# torch is pinned to 2.13.0 in pyproject.toml: the local CPU wheel, not a CUDA build.
"$VENV/bin/python" -m pip install --quiet -e '.[dev]'

# SoapySDR: optional for the loopback link, required for real radios and in CI.
bash scripts/install-soapysdr.sh "$VENV" || echo "note: SoapySDR bindings not installed; soapy: devices unavailable (loopback and files still work)" >&2

# GNU Radio: for the GNU Radio blocks, the example flowgraph and the ZMQ interop tests
# (tests/gnuradio, skipped without it).
bash scripts/install-gnuradio.sh || echo "note: GNU Radio not installed; tests/gnuradio will be skipped" >&2
# Chromium: only the tests of the `rx --monitor` page need it (they skip without it).
bash scripts/install-chromium.sh || echo "note: chromium not installed; the browser tests of the monitor page will skip" >&2
