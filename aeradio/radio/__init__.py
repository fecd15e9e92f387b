"""Device backends behind one streaming interface: SoapySDR, ZMQ and SigMF files.

``open_device`` imports a backend only when its URI scheme is used: importing this
package never imports SoapySDR or pyzmq.
"""

from aeradio.radio.base import Device, DeviceSettings, StreamStats
from aeradio.radio.uri import open_device

__all__ = ["Device", "DeviceSettings", "StreamStats", "open_device"]
