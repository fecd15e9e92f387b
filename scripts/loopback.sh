#!/usr/bin/env bash
# The whole link on one machine: channel simulator, RX and TX as three processes on
# 127.0.0.1. The same as `aeradio demo`, spelled out so each process can be swapped
# (e.g. the channel for a GNU Radio flowgraph with gr-zeromq blocks).
#
#   scripts/loopback.sh [MODEL_DIR] [EBN0_DB]
#
# The test-pattern seed (SEED, 0..4095) travels in the frames: RX needs no seed.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/ae-n7-k8}
EBN0_DB=${2:-8}
SEED=${SEED:-0}
RATE=1000000
TX_PORT=${TX_PORT:-5555}
RX_PORT=${RX_PORT:-5556}
AERADIO=${AERADIO:-.venv/bin/aeradio}
OUT=${OUT:-out/loopback}
mkdir -p "$OUT"

[ -f "$MODEL/model.json" ] || "$AERADIO" train --config configs/ae-n7-k8.toml --out "$MODEL"

"$AERADIO" channel --tx tcp://127.0.0.1:$TX_PORT --rx tcp://127.0.0.1:$RX_PORT \
    --sample-rate-hz $RATE --ebn0-db "$EBN0_DB" --model "$MODEL" \
    --cfo-hz 2000 --sco-ppm 20 --delay-samples 3.3 --realtime &
CHANNEL=$!
trap 'kill $CHANNEL $RX 2>/dev/null || true' EXIT
sleep 1
"$AERADIO" rx --model "$MODEL" --device zmq:tcp://127.0.0.1:$RX_PORT --frames 200 \
    --json "$OUT/rx.json" &
RX=$!
sleep 1
"$AERADIO" tx --model "$MODEL" --device zmq:tcp://127.0.0.1:$TX_PORT --frames 200 --seed "$SEED"
wait $RX
cat "$OUT/rx.json"
