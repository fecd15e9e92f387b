#!/usr/bin/env bash
# Installs Debian's SoapySDR Python bindings (plus the UHD and HackRF modules) when they
# are missing and we are root, then links them into the given virtual environment.
# Exit 0 when `import SoapySDR` works from the venv afterwards, 1 otherwise.
set -uo pipefail
VENV=${1:-.venv}
find_bindings() {
    for d in /usr/lib/python3/dist-packages /usr/local/lib/python3/dist-packages; do
        if [ -f "$d/SoapySDR.py" ] && ls "$d"/_SoapySDR*.so >/dev/null 2>&1; then echo "$d"; return 0; fi
    done
    return 1
}
if ! dir=$(find_bindings); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${AERADIO_NO_APT:-0}" != 1 ]; then
        export DEBIAN_FRONTEND=noninteractive
        (apt-get update -qq && apt-get install -y -qq --no-install-recommends \
            python3-soapysdr soapysdr-tools soapysdr-module-uhd soapysdr-module-hackrf) >/dev/null 2>&1 \
            || { echo "install-soapysdr: apt-get could not install python3-soapysdr" >&2; exit 1; }
    fi
    dir=$(find_bindings) || { echo "install-soapysdr: python3-soapysdr is not installed (apt-get install python3-soapysdr)" >&2; exit 1; }
fi
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
suffix=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
so="$dir/_SoapySDR$suffix"
[ -f "$so" ] || { echo "install-soapysdr: $so not found: the Debian bindings do not match this Python" >&2; exit 1; }
ln -sf "$dir/SoapySDR.py" "$site/SoapySDR.py"
ln -sf "$so" "$site/_SoapySDR$suffix"
"$VENV/bin/python" -c 'import SoapySDR' || { echo "install-soapysdr: import SoapySDR fails in $VENV" >&2; exit 1; }
