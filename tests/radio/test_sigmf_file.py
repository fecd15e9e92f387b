"""The SigMF file device: round trip, validation by the sigmf library, bad recordings."""

import json
import os
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import sigmf

from aeradio.core.errors import CaptureFormatError, ConfigError, StreamError
from aeradio.radio.base import DeviceSettings
from aeradio.radio.sigmf_file import SigmfFileDevice

RATE = 1e6


def _write(path: Path, x: np.ndarray, **kwargs: object) -> None:
    with SigmfFileDevice(path, "tx", DeviceSettings(RATE, freq_hz=915e6), **kwargs) as dev:
        dev.write(x[: len(x) // 2])
        dev.write(x[len(x) // 2 :], end_burst=True)


def _read_all(dev: SigmfFileDevice, block: int = 1000) -> np.ndarray:
    parts = []
    while (x := dev.read(block)) is not None:
        parts.append(x)
    return np.concatenate(parts) if parts else np.zeros(0, np.complex64)


def test_roundtrip_and_sigmf_library_reads_it(tmp_path: Path, rng: np.random.Generator) -> None:
    x = (rng.standard_normal(5000) + 1j * rng.standard_normal(5000)).astype(np.complex64)
    path = tmp_path / "rec.sigmf-meta"
    with SigmfFileDevice(path, "tx", DeviceSettings(RATE, freq_hz=915e6)) as dev:
        dev.write(x)
        dev.annotate(100, 200, "frame", seq=4, cfo_hz=12.5, snr_db=7.0, decoded=True)
    handle = sigmf.sigmffile.fromfile(str(path))
    handle.validate()
    np.testing.assert_array_equal(handle.read_samples(), x)
    assert handle.get_global_field("core:sample_rate") == RATE
    assert handle.get_captures()[0]["core:frequency"] == 915e6
    ann = handle.get_annotations()
    assert ann[0]["aeradio:seq"] == 4 and ann[0]["core:sample_count"] == 200
    with SigmfFileDevice(tmp_path / "rec.sigmf-data", "rx", DeviceSettings(RATE)) as dev:
        np.testing.assert_array_equal(_read_all(dev, 777), x)
        assert dev.read(10) is None


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "a.sigmf-meta"
    _write(path, np.ones(10, np.complex64))
    with pytest.raises(CaptureFormatError, match="refusing to overwrite"):
        SigmfFileDevice(path, "tx", DeviceSettings(RATE))
    _write(path, np.zeros(20, np.complex64), overwrite=True)
    with SigmfFileDevice(path, "rx", DeviceSettings(RATE)) as dev:
        assert len(_read_all(dev)) == 20


def test_nothing_appears_before_close(tmp_path: Path) -> None:
    path = tmp_path / "b.sigmf-meta"
    dev = SigmfFileDevice(path, "tx", DeviceSettings(RATE))
    dev.write(np.ones(10, np.complex64))
    assert not path.exists() and not path.with_suffix(".sigmf-data").exists()
    dev.close()
    assert path.exists() and path.with_suffix(".sigmf-data").exists()
    assert not list(tmp_path.glob("*.tmp*"))


def test_wrong_datatype_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.sigmf-meta"
    _write(path, np.ones(10, np.complex64))
    meta = json.loads(path.read_text())
    meta["global"]["core:datatype"] = "ci16_le"
    path.write_text(json.dumps(meta))
    with pytest.raises(CaptureFormatError, match="cf32_le"):
        SigmfFileDevice(path, "rx", DeviceSettings(RATE))


def test_sample_rate_mismatch_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "d.sigmf-meta"
    _write(path, np.ones(10, np.complex64))
    with pytest.raises(CaptureFormatError, match="2e\\+06 S/s"):
        SigmfFileDevice(path, "rx", DeviceSettings(2e6))


def test_truncated_data_is_a_fault(tmp_path: Path) -> None:
    """A data file cut by 3 bytes: the whole samples are read, the cut is a fault (and so is
    the checksum, which covers every byte), never silently accepted."""
    path = tmp_path / "e.sigmf-meta"
    _write(path, np.arange(10, dtype=np.complex64))
    data = path.with_suffix(".sigmf-data")
    data.write_bytes(data.read_bytes()[:-3])
    with SigmfFileDevice(path, "rx", DeviceSettings(RATE)) as dev:
        assert dev.stats.faults.kinds["truncated"] == 1  # known at open, before any read
        x = _read_all(dev)
        assert dev.truncated_bytes == 5
        assert "mid-sample" in dev.stats.faults[0] and str(data) in dev.stats.faults[0]
        assert dev.checksum_ok is False and dev.stats.faults.kinds["checksum"] == 1
    np.testing.assert_array_equal(x, np.arange(9))


def test_nonfinite_samples_are_counted(tmp_path: Path) -> None:
    """NaN and infinite parts, counted once per sample; big finite samples are finite."""
    path = tmp_path / "f.sigmf-meta"
    x = np.ones(100, np.complex64)
    x[[3, 50]] = np.nan
    x[70] = np.inf
    _write(path, x)
    with SigmfFileDevice(path, "rx", DeviceSettings(RATE)) as dev:
        assert len(_read_all(dev, 30)) == 100
        assert dev.nonfinite_samples == 3
    big = np.full(100, 3e38 + 3e38j, np.complex64)  # finite samples whose sum overflows
    big[[5, 6]] = [np.nan, complex(1, np.inf)]
    _write(tmp_path / "g.sigmf-meta", big)
    with SigmfFileDevice(tmp_path / "g.sigmf-meta", "rx", DeviceSettings(RATE)) as dev:
        assert len(_read_all(dev, 5)) == 100
        assert dev.nonfinite_samples == 2  # the blocks of big finite samples count none


def test_missing_and_misnamed_files(tmp_path: Path) -> None:
    with pytest.raises(CaptureFormatError, match="no such recording"):
        SigmfFileDevice(tmp_path / "none.sigmf-meta", "rx", DeviceSettings(RATE))
    with pytest.raises(ConfigError, match="sigmf-meta"):
        SigmfFileDevice(tmp_path / "x.wav", "rx", DeviceSettings(RATE))
    (tmp_path / "g.sigmf-meta").write_text("{not json")
    with pytest.raises(CaptureFormatError, match="not readable"):
        SigmfFileDevice(tmp_path / "g.sigmf-meta", "rx", DeviceSettings(RATE))


def test_direction_misuse_is_a_stream_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sigmf-meta"
    _write(path, np.ones(4, np.complex64))
    with SigmfFileDevice(path, "rx", DeviceSettings(RATE)) as dev, pytest.raises(StreamError):
        dev.write(np.ones(2, np.complex64))


def test_checksum_is_compared_once_the_whole_file_was_read(tmp_path: Path) -> None:
    path = tmp_path / "s.sigmf-meta"
    _write(path, np.arange(1000, dtype=np.complex64))
    with SigmfFileDevice(path, "rx", DeviceSettings(RATE)) as dev:
        assert dev.metadata.sha512 is not None and dev.checksum_ok is None
        _read_all(dev, 300)
        assert dev.checksum_ok is True and not dev.stats.faults
    data = path.with_suffix(".sigmf-data")
    raw = bytearray(data.read_bytes())
    raw[4000] ^= 0x01  # one bit of sample 500
    data.write_bytes(bytes(raw))
    with SigmfFileDevice(path, "rx", DeviceSettings(RATE)) as dev:
        dev.read(600)
        assert dev.checksum_ok is None and not dev.stats.faults  # not known before the end
        _read_all(dev, 300)
        assert dev.checksum_ok is False
        (fault,) = dev.stats.faults
        assert "core:sha512" in fault and str(data) in fault and dev.stats.faults.kinds["checksum"] == 1
    with SigmfFileDevice(path, "rx", DeviceSettings(RATE)) as dev:  # or before reading anything
        assert dev.verify_data() is False and dev.stats.faults.count == 1
        assert len(_read_all(dev)) == 1000 and dev.stats.faults.count == 1  # not reported twice


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("error", [KeyboardInterrupt, MemoryError, RuntimeError])
def test_a_recording_interrupted_by_an_exception_is_not_published(tmp_path: Path, error: type) -> None:
    with pytest.raises(error), SigmfFileDevice(tmp_path / "x.sigmf-meta", "tx", DeviceSettings(RATE)) as dev:
        dev.write(np.ones(1000, np.complex64))
        assert len(_names(tmp_path)) == 1  # the hidden temporary data file
        raise error()
    assert _names(tmp_path) == []


def test_abort_publishes_nothing_and_keeps_what_it_would_have_replaced(tmp_path: Path) -> None:
    path = tmp_path / "x.sigmf-meta"
    _write(path, np.arange(10, dtype=np.complex64))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    dev = SigmfFileDevice(path, "tx", DeviceSettings(RATE), overwrite=True)
    dev.write(np.zeros(500, np.complex64))
    dev.abort()
    dev.close()  # after abort: nothing more happens
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with pytest.raises(StreamError):
        dev.write(np.ones(1, np.complex64))


def test_metadata_that_does_not_validate_publishes_nothing(tmp_path: Path) -> None:
    dev = SigmfFileDevice(tmp_path / "x.sigmf-meta", "tx", DeviceSettings(RATE),
                          metadata={"core:sha512": "not hex"})
    dev.write(np.ones(10, np.complex64))
    with pytest.raises(CaptureFormatError, match="x.sigmf-meta: invalid SigMF metadata at .*core:sha512"):
        dev.close()
    assert _names(tmp_path) == []


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    """A FIFO named like a recording would block open() until a writer came: refused first."""
    good = tmp_path / "good.sigmf-meta"
    _write(good, np.ones(4, np.complex64))
    os.mkfifo(tmp_path / "m.sigmf-meta")
    shutil.copy(good, tmp_path / "d.sigmf-meta")
    os.mkfifo(tmp_path / "d.sigmf-data")
    signal.alarm(10)  # a hang fails the test instead of the suite
    try:
        with pytest.raises(CaptureFormatError, match="m.sigmf-meta: cannot open the metadata file: not a"):
            SigmfFileDevice(tmp_path / "m.sigmf-meta", "rx", DeviceSettings(RATE))
        with pytest.raises(CaptureFormatError, match="d.sigmf-data: cannot open the data file: not a"):
            SigmfFileDevice(tmp_path / "d.sigmf-meta", "rx", DeviceSettings(RATE))
    finally:
        signal.alarm(0)


def _blocks(path: Path, sizes: list[int], *, read_ahead: bool) -> tuple[list[np.ndarray], dict[str, object]]:
    """Read with block sizes ``sizes`` (the last one repeated) until the end: the blocks and
    what the device says about them."""
    blocks = []
    with SigmfFileDevice(path, "rx", DeviceSettings(RATE), read_ahead=read_ahead) as dev:
        i = 0
        while (x := dev.read(sizes[min(i, len(sizes) - 1)])) is not None:
            blocks.append(x)
            i += 1
        seen = {"samples": dev.stats.samples, "nonfinite": dev.nonfinite_samples,
                "checksum_ok": dev.checksum_ok, "faults": list(dev.stats.faults)}
    return blocks, seen


@pytest.mark.parametrize("sizes", [[300], [1000], [5000], [300, 300, 700, 100, 1], [64, 2000, 7, 300]])
@pytest.mark.parametrize("damage", ["none", "cut mid-sample", "one bit"])
def test_read_ahead_returns_what_a_plain_read_returns(
    tmp_path: Path, rng: np.random.Generator, sizes: list[int], damage: str
) -> None:
    """The same blocks (sizes, samples, order), end of file, non-finite count, checksum and
    faults with the next block read ahead as with every read on the caller's thread, block
    sizes changing between reads included (a block read ahead of another size is undone)."""
    path = tmp_path / "r.sigmf-meta"
    x = (rng.standard_normal(2345) + 1j * rng.standard_normal(2345)).astype(np.complex64)
    x[[7, 1500]] = np.nan
    _write(path, x)
    data = path.with_suffix(".sigmf-data")
    raw = bytearray(data.read_bytes())
    if damage == "cut mid-sample":
        raw = raw[:-3]
    elif damage == "one bit":
        raw[8 * 1200] ^= 0x01
    data.write_bytes(bytes(raw))
    plain, plain_seen = _blocks(path, sizes, read_ahead=False)
    ahead, ahead_seen = _blocks(path, sizes, read_ahead=True)
    assert [len(b) for b in ahead] == [len(b) for b in plain]
    for a, p in zip(ahead, plain, strict=True):
        np.testing.assert_array_equal(a, p)
    assert ahead_seen == plain_seen
    want = np.frombuffer(bytes(raw[: len(raw) // 8 * 8]), np.complex64)
    np.testing.assert_array_equal(np.concatenate(ahead), want)
    assert ahead_seen["nonfinite"] == 2 and ahead_seen["checksum_ok"] is (damage == "none")
    assert len(ahead_seen["faults"]) == {"none": 0, "cut mid-sample": 2, "one bit": 1}[damage]


def test_blocks_read_ahead_are_new_writeable_arrays(tmp_path: Path) -> None:
    """Nothing is reused under the caller: a block kept (or written into) while the next one
    is read stays as it was."""
    path = tmp_path / "n.sigmf-meta"
    _write(path, np.arange(1000, dtype=np.complex64))
    with SigmfFileDevice(path, "rx", DeviceSettings(RATE)) as dev:
        a = dev.read(400)
        b = dev.read(400)
        assert a.flags.writeable and not np.shares_memory(a, b)
        a[:] = -1
        c = dev.read(400)
    np.testing.assert_array_equal(b, np.arange(400, 800))
    np.testing.assert_array_equal(c, np.arange(800, 1000))


class _FailingFile:
    """A data file whose ``fail_at``-th readinto raises OSError (EIO)."""

    def __init__(self, f: object, fail_at: int) -> None:
        self._f, self._fail_at, self.calls = f, fail_at, 0

    def readinto(self, buf: memoryview) -> int:
        self.calls += 1
        if self.calls == self._fail_at:
            raise OSError(5, "Input/output error")
        return self._f.readinto(buf)

    def __getattr__(self, name: str) -> object:
        return getattr(self._f, name)


@pytest.mark.parametrize("read_ahead", [False, True])
def test_a_read_error_is_raised_by_the_read_that_wanted_the_block(tmp_path: Path, read_ahead: bool) -> None:
    """An I/O error while reading block 2 (on the read-ahead thread or not) is raised, the
    same OSError, by the second read(); close() then closes quietly."""
    path = tmp_path / "e.sigmf-meta"
    _write(path, np.arange(1000, dtype=np.complex64))
    dev = SigmfFileDevice(path, "rx", DeviceSettings(RATE), read_ahead=read_ahead)
    dev._file = _FailingFile(dev._file, fail_at=2)
    np.testing.assert_array_equal(dev.read(300), np.arange(300))
    with pytest.raises(OSError, match="Input/output error"):
        dev.read(300)
    dev.close()
    with pytest.raises(StreamError, match="not open for reading"):
        dev.read(300)


def test_close_waits_for_the_block_read_ahead_and_stops_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "c.sigmf-meta"
    _write(path, np.arange(1000, dtype=np.complex64))
    for stop in ("close", "abort"):
        dev = SigmfFileDevice(path, "rx", DeviceSettings(RATE))
        dev.read(100)  # block 2 is being read ahead
        assert [t for t in threading.enumerate() if t.name.startswith("sigmf-read-ahead")]
        getattr(dev, stop)()
        assert dev._file.closed
        assert not [t for t in threading.enumerate() if t.name.startswith("sigmf-read-ahead")]
