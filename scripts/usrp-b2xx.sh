#!/usr/bin/env bash
# The link over two USRP B2xx (B200/B210/B200mini), one transmitting, one receiving.
# A single B210 can also do both (full duplex): give both commands the same serial.
#
#   scripts/usrp-b2xx.sh tx SERIAL [MODEL_DIR]     # on the transmitting host
#   scripts/usrp-b2xx.sh rx SERIAL [MODEL_DIR]     # on the receiving host
#
# Start rx first, and tx once rx prints "aeradio rx: ready" (frames sent before are lost).
#
# 915 MHz is the ISM band in ITU region 2; use 868 MHz or 2.45 GHz elsewhere and keep to
# your local regulations. Start with the antennas a few metres apart, or cabled through
# at least 30 dB of attenuation (never connect TX to RX directly).
set -euo pipefail
cd "$(dirname "$0")/.."
ROLE=${1:?tx or rx}
SERIAL=${2:?the USRP serial (see: aeradio devices)}
MODEL=${3:-models/ae-n7-k8}
FREQ_HZ=${FREQ_HZ:-915e6}
RATE=${RATE:-1e6}          # B2xx: 200 kS/s .. 56 MS/s; 1 MS/s works over USB 2 too
TX_GAIN_DB=${TX_GAIN_DB:-60}   # B2xx TX gain range 0..89.75 dB
RX_GAIN_DB=${RX_GAIN_DB:-40}   # B2xx RX gain range 0..76 dB
AERADIO=${AERADIO:-.venv/bin/aeradio}
DEV="soapy:driver=uhd,serial=$SERIAL"
case "$ROLE" in
    tx) exec "$AERADIO" tx --model "$MODEL" --device "$DEV" --freq-hz "$FREQ_HZ" \
            --sample-rate-hz "$RATE" --gain-db "$TX_GAIN_DB" --antenna TX/RX --frames 1000 ;;
    rx) exec "$AERADIO" rx --model "$MODEL" --device "$DEV" --freq-hz "$FREQ_HZ" \
            --sample-rate-hz "$RATE" --gain-db "$RX_GAIN_DB" --antenna RX2 --frames 1000 \
            --json rx-usrp.json --capture captures/usrp ;;
    *) echo "usage: $0 tx|rx SERIAL [MODEL_DIR]" >&2; exit 2 ;;
esac
