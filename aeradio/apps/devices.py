"""``aeradio devices``: list the radios SoapySDR finds, as device URIs."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from aeradio.radio.soapy import import_soapysdr

#: Enumeration keys that identify a unit, in the order they go into the URI.
URI_KEYS = ("driver", "serial", "addr", "type")


def device_uri(found: Mapping[str, str]) -> str:
    """A ``soapy:`` URI for one enumeration result (driver and identifying keys only).

    >>> device_uri({"driver": "hackrf", "serial": "0000abcd", "label": "HackRF One"})
    'soapy:driver=hackrf,serial=0000abcd'
    """
    keys = [k for k in URI_KEYS if k in found] or list(found)
    return "soapy:" + ",".join(f"{k}={found[k]}" for k in keys)


def cmd_devices(args: argparse.Namespace) -> int:
    """Print one line per device: its URI and its label; say so when there is none."""
    soapy = import_soapysdr()
    found = [dict(kwargs) for kwargs in soapy.Device.enumerate()]
    if not found:
        modules = ", ".join(sorted(Path(m).name for m in soapy.listModules())) or "none"
        print(f"no SoapySDR devices found (SoapySDR {soapy.getAPIVersion()}, modules: {modules})")
        print("without hardware, use the loopback: aeradio channel + zmq:tcp://127.0.0.1:PORT devices")
        return 0
    for dev in found:
        label = dev.get("label") or dev.get("product") or dev.get("driver", "?")
        print(f"{device_uri(dev)}  ({label})")
    return 0
