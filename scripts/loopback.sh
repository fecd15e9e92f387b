#!/usr/bin/env bash
# The whole link on one machine: channel simulator, RX and TX as three processes on
# 127.0.0.1. The same as `aeradio demo`, spelled out so each process can be swapped
# (e.g. the channel for a GNU Radio flowgraph with gr-zeromq blocks).
#
#   scripts/loopback.sh [MODEL_DIR] [EBN0_DB]
#
# No fixed sleeps: each process is started only after the one before it said it is ready
# (the channel once its sockets are bound, rx once it is subscribed and receiving), so a
# slow start never loses frames. Logs and rx's report go to $OUT; the exit code is rx's
# (0: usable result, 1: unusable, see `aeradio rx --help` and README.md).
# The test-pattern seed (SEED, 0..4095) travels in the frames: RX needs no seed.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/ae-n7-k8}
EBN0_DB=${2:-8}
SEED=${SEED:-0}
RATE=1000000
FRAMES=${FRAMES:-200}
TX_PORT=${TX_PORT:-5555}
RX_PORT=${RX_PORT:-5556}
AERADIO=${AERADIO:-.venv/bin/aeradio}
OUT=${OUT:-out/loopback}
START_TIMEOUT_S=${START_TIMEOUT_S:-60}   # model loading on a busy machine
RX_TIMEOUT_S=${RX_TIMEOUT_S:-120}        # rx gives up waiting for lost frames after this
mkdir -p "$OUT"
rm -f "$OUT/rx.json"

[ -f "$MODEL/model.json" ] || "$AERADIO" train --config configs/ae-n7-k8.toml --out "$MODEL"

# wait_for_line NAME PID LOG PATTERN: until LOG has a line matching PATTERN; fails clearly
# when the process exits first or START_TIMEOUT_S passes.
wait_for_line() {
    local name=$1 pid=$2 log=$3 pattern=$4 polls=0
    until grep -q -- "$pattern" "$log" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "loopback.sh: $name exited before it was ready; $log says:" >&2
            tail -n 5 "$log" >&2
            exit 1
        fi
        if [ "$polls" -ge $((START_TIMEOUT_S * 10)) ]; then
            echo "loopback.sh: $name not ready after ${START_TIMEOUT_S} s (no '$pattern' in $log)" >&2
            exit 1
        fi
        sleep 0.1
        polls=$((polls + 1))
    done
}

CHANNEL= RX=
trap 'kill $CHANNEL $RX 2>/dev/null || true' EXIT
"$AERADIO" channel --tx tcp://127.0.0.1:$TX_PORT --rx tcp://127.0.0.1:$RX_PORT \
    --sample-rate-hz $RATE --ebn0-db "$EBN0_DB" --model "$MODEL" \
    --cfo-hz 2000 --sco-ppm 20 --delay-samples 3.3 --realtime 2>"$OUT/channel.log" &
CHANNEL=$!
wait_for_line channel $CHANNEL "$OUT/channel.log" '^channel: PULL'
"$AERADIO" rx --model "$MODEL" --device zmq:tcp://127.0.0.1:$RX_PORT --sample-rate-hz $RATE \
    --frames "$FRAMES" --duration-s "$RX_TIMEOUT_S" --json "$OUT/rx.json" 2>"$OUT/rx.log" &
RX=$!
wait_for_line rx $RX "$OUT/rx.log" '^aeradio rx: ready'
"$AERADIO" tx --model "$MODEL" --device zmq:tcp://127.0.0.1:$TX_PORT --sample-rate-hz $RATE \
    --frames "$FRAMES" --seed "$SEED"
RX_CODE=0
wait $RX || RX_CODE=$?
RX=
grep -v '^aeradio rx: frames ' "$OUT/rx.log" >&2 || true   # all but the status lines
[ ! -f "$OUT/rx.json" ] || cat "$OUT/rx.json"
exit $RX_CODE
