#!/usr/bin/env bash
# Installs Debian's GNU Radio (the gnuradio package: runtime, gr-zeromq, gr-channels, GRC,
# its Python bindings for the system /usr/bin/python3) and python3-zmq when GNU Radio's
# Python cannot import them and we are root (AERADIO_NO_APT=1: never run apt-get).
# About 630 MB installed, 100 MB downloaded, 1-2 minutes.
# The bindings are built for Debian's python3 and numpy 1.x: they are used by that
# interpreter, not linked into the venv (aeradio's GNU Radio blocks need no torch).
# Exit 0 when `$GR_PYTHON -c 'import gnuradio...'` works afterwards, 1 otherwise.
set -uo pipefail
GR_PYTHON=${GR_PYTHON:-/usr/bin/python3}
MODULES='import numpy, zmq; from gnuradio import gr, blocks, analog, channels, filter, zeromq'
importable() { "$GR_PYTHON" -c "$MODULES" >/dev/null 2>&1; }
if ! importable; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${AERADIO_NO_APT:-0}" != 1 ]; then
        echo "install-gnuradio: installing Debian's gnuradio and python3-zmq (about 630 MB, a minute or two)" >&2
        export DEBIAN_FRONTEND=noninteractive
        (apt-get update -qq && apt-get install -y -qq --no-install-recommends gnuradio python3-zmq) >/dev/null 2>&1 \
            || { echo "install-gnuradio: apt-get could not install gnuradio python3-zmq" >&2; exit 1; }
    fi
    importable || {
        echo "install-gnuradio: GNU Radio is not importable by $GR_PYTHON" \
             "(as root: apt-get install --no-install-recommends gnuradio python3-zmq)" >&2
        exit 1
    }
fi
