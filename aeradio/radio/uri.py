"""Open a :class:`~aeradio.radio.base.Device` from a device URI (docs/contracts.md, "Device URIs").

- ``soapy:ARGS`` (``soapy:driver=uhd,serial=...``, ``soapy:driver=hackrf``): a SoapySDR radio;
- ``zmq:tcp://HOST:PORT``: a ZMQ sample stream; TX connects a PUSH socket to the channel's
  PULL, RX connects a SUB socket to the channel's PUB (:mod:`aeradio.radio.zmq_stream`);
  ``zmq:tcp://HOST:PORT?bind=1`` binds the socket instead (to feed GNU Radio's ZMQ sources,
  which connect);
- ``file:PATH.sigmf-meta`` or ``file:PATH.sigmf-data``: a SigMF recording (cf32_le).

Backends are imported only when their scheme is used, so opening a file never needs
SoapySDR or pyzmq.

>>> split_uri("zmq:tcp://127.0.0.1:5555")
('zmq', 'tcp://127.0.0.1:5555')
"""

from __future__ import annotations

from typing import Any

from aeradio.core.errors import ConfigError
from aeradio.radio.base import Device, DeviceSettings

SCHEMES = ("soapy", "zmq", "file")
DIRECTIONS = ("rx", "tx")
SIGMF_SUFFIXES = (".sigmf-meta", ".sigmf-data")


def split_uri(uri: str) -> tuple[str, str]:
    """``(scheme, rest)`` of a device URI; :class:`ConfigError` for an unknown scheme."""
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme not in SCHEMES:
        raise ConfigError(
            f"unknown device URI {uri!r}: expected soapy:driver=..., zmq:tcp://HOST:PORT "
            "or file:PATH.sigmf-meta"
        )
    if not rest:
        raise ConfigError(f"device URI {uri!r} has nothing after '{scheme}:'")
    return scheme, rest


def open_device(uri: str, direction: str, settings: DeviceSettings, **kwargs: Any) -> Device:
    """Open the device named by ``uri`` for ``direction`` ("rx" or "tx") with ``settings``.

    ``kwargs`` go to the backend (e.g. ``overwrite=True`` for a SigMF file written by TX,
    ``bind=True`` for a ZMQ socket that binds instead of connecting, as ``?bind=1`` does).
    """
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction must be 'rx' or 'tx', got {direction!r}")
    scheme, rest = split_uri(uri)
    if scheme == "soapy":
        from aeradio.radio.soapy import SoapyDevice

        return SoapyDevice(rest, direction, settings, **kwargs)
    if scheme == "zmq":
        from aeradio.radio.zmq_stream import ZmqRxDevice, ZmqTxDevice

        cls = ZmqRxDevice if direction == "rx" else ZmqTxDevice
        return cls(uri, settings, **kwargs)
    if not rest.endswith(SIGMF_SUFFIXES):
        raise ConfigError(f"file device must name a .sigmf-meta or .sigmf-data file, got {uri!r}")
    from aeradio.radio.sigmf_file import SigmfFileDevice

    return SigmfFileDevice(rest, direction, settings, **kwargs)
