#!/usr/bin/env bash
# The link over two HackRF One. A HackRF is half duplex: it transmits or receives, never
# both, so a link needs two units (one per host, or both on one host by serial).
#
#   scripts/hackrf.sh tx SERIAL [MODEL_DIR]
#   scripts/hackrf.sh rx SERIAL [MODEL_DIR]
#
# Start rx first, and tx once rx prints "aeradio rx: ready" (frames sent before are lost).
#
# HackRF's lowest clean sample rate is 2 MS/s (its baseband filter is no narrower than
# 1.75 MHz); the symbol rate is RATE / samples_per_symbol of the model. Captures record
# the rate they ran at, and `aeradio finetune` only accepts captures at the model's own
# [radio] sample_rate_hz: to fine-tune from HackRF captures, train the model with
# sample_rate_hz = 2e6 (a copy of configs/ae-n7-k8.toml with that one line changed).
# Keep to your local regulations; start with low TX gain and antennas apart.
set -euo pipefail
cd "$(dirname "$0")/.."
ROLE=${1:?tx or rx}
SERIAL=${2:?the HackRF serial (see: aeradio devices)}
MODEL=${3:-models/ae-n7-k8}
FREQ_HZ=${FREQ_HZ:-915e6}
RATE=${RATE:-2e6}
TX_GAIN_DB=${TX_GAIN_DB:-30}   # TX VGA 0..47 dB (the 14 dB amp is off by default)
RX_GAIN_DB=${RX_GAIN_DB:-40}   # LNA 0..40 + VGA 0..62 dB, split by the driver
AERADIO=${AERADIO:-.venv/bin/aeradio}
DEV="soapy:driver=hackrf,serial=$SERIAL"
case "$ROLE" in
    tx) exec "$AERADIO" tx --model "$MODEL" --device "$DEV" --freq-hz "$FREQ_HZ" \
            --sample-rate-hz "$RATE" --gain-db "$TX_GAIN_DB" --frames 1000 ;;
    rx) exec "$AERADIO" rx --model "$MODEL" --device "$DEV" --freq-hz "$FREQ_HZ" \
            --sample-rate-hz "$RATE" --gain-db "$RX_GAIN_DB" --frames 1000 \
            --json rx-hackrf.json --capture captures/hackrf ;;
    *) echo "usage: $0 tx|rx SERIAL [MODEL_DIR]" >&2; exit 2 ;;
esac
