"""``aeradio devices``."""

import pytest

from aeradio.apps.devices import device_uri
from aeradio.cli import main


def test_device_uri_keeps_identifying_keys():
    found = {"driver": "uhd", "type": "b200", "serial": "31A4B5", "label": "B210", "product": "B210"}
    assert device_uri(found) == "soapy:driver=uhd,serial=31A4B5,type=b200"


def test_devices_lists_or_says_none(capfd):
    pytest.importorskip("SoapySDR")
    assert main(["devices"]) == 0
    out = capfd.readouterr().out
    assert out.startswith("soapy:driver=") or out.startswith("no SoapySDR devices found")


def test_devices_without_soapysdr_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "SoapySDR", None)
    assert main(["devices"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get install python3-soapysdr" in err[0]


def test_devices_prints_one_uri_per_unit(monkeypatch, capsys):
    class FakeDevice:
        @staticmethod
        def enumerate():
            return [{"driver": "hackrf", "serial": "0000beef", "label": "HackRF One #0 0000beef"},
                    {"driver": "uhd", "type": "b200", "serial": "31A4B5", "product": "B210"}]

    class FakeSoapy:
        Device = FakeDevice

    monkeypatch.setattr("aeradio.apps.devices.import_soapysdr", lambda: FakeSoapy)
    assert main(["devices"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "soapy:driver=hackrf,serial=0000beef  (HackRF One #0 0000beef)",
        "soapy:driver=uhd,serial=31A4B5,type=b200  (B210)",
    ]
