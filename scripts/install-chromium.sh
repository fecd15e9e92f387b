#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver when they are missing and we are root: the
# headless browser the tests of the `aeradio rx --monitor` page drive (through selenium).
# AERADIO_NO_APT=1 skips apt-get. Exit 0 when both `chromium` and `chromedriver` run
# afterwards, 1 otherwise (the browser tests then skip, or fail under CI=true).
set -uo pipefail
have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
if ! have; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${AERADIO_NO_APT:-0}" != 1 ]; then
        export DEBIAN_FRONTEND=noninteractive
        (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver) \
            >/dev/null 2>&1 \
            || { echo "install-chromium: apt-get could not install chromium chromium-driver" >&2; exit 1; }
    fi
    have || { echo "install-chromium: chromium and chromedriver are not installed (apt-get install chromium chromium-driver)" >&2; exit 1; }
fi
timeout 60 chromium --headless=new --no-sandbox --disable-gpu --dump-dom about:blank >/dev/null 2>&1 \
    || { echo "install-chromium: chromium is installed but does not start headless" >&2; exit 1; }
