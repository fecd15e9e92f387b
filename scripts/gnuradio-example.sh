#!/usr/bin/env bash
# BLER of an aeradio model inside GNU Radio, headless: runs the flowgraph
# examples/gnuradio/bler_awgn.grc (its generated Python, bler_awgn.py) with GNU Radio's
# Python: random messages -> aeradio LUT mapper -> GNU Radio RRC filter -> channel model
# (AWGN at EBN0_DB under aeradio's energy convention) -> matched filter -> aeradio neural
# demapper -> BLER counter.
#
#   scripts/gnuradio-example.sh MODEL_DIR [EBN0_DB]
#
# Prints "blocks B errors E bit_errors b" and, as its last line, "BLER <value>".
# BLOCKS (messages sent, default 100000) and SEED (default 0) come from the environment;
# GR_PYTHON is GNU Radio's Python (default /usr/bin/python3: Debian's gnuradio package,
# installed by scripts/install-gnuradio.sh). Exit 0 with a BLER, 1 otherwise, 2 for usage.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GR_PYTHON=${GR_PYTHON:-/usr/bin/python3}
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: scripts/gnuradio-example.sh MODEL_DIR [EBN0_DB]" >&2
    exit 2
fi
MODEL=$1
EBN0_DB=${2:-8}
if ! "$GR_PYTHON" -c 'import gnuradio.gr' 2>/dev/null; then
    echo "gnuradio-example: GNU Radio is not importable by $GR_PYTHON (install it: sudo bash scripts/install-gnuradio.sh)" >&2
    exit 1
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# The model directory is checked first, so a bad one is one line (exit 2), not a traceback.
"$GR_PYTHON" - "$MODEL" <<'PY' || exit $?
import sys
from aeradio.core.errors import AeradioError
from aeradio.core.model_dir import verify_model_dir
try:
    verify_model_dir(sys.argv[1])
except AeradioError as exc:
    print(f"gnuradio-example: {exc}", file=sys.stderr)
    sys.exit(2)
PY
out=$("$GR_PYTHON" "$ROOT/examples/gnuradio/bler_awgn.py" \
    --model-dir "$MODEL" --ebn0-db "$EBN0_DB" --num-blocks "${BLOCKS:-100000}" --seed "${SEED:-0}") || {
    echo "gnuradio-example: the flowgraph failed (see above)" >&2
    exit 1
}
bler=$(printf '%s\n' "$out" | grep '^BLER ' | tail -n 1)
if [ -z "$bler" ] || [ "$bler" = "BLER nan" ]; then
    echo "gnuradio-example: the flowgraph compared no blocks" >&2
    exit 1
fi
printf '%s\n' "$out" | grep -v '^BLER ' || true
echo "$bler"
