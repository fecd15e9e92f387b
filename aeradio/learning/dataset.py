"""Datasets of received frames for fine-tuning: captured SigMF recordings -> labelled blocks.

:func:`build_dataset` runs the RX chain offline over every SigMF recording of a capture
directory (``aeradio rx --capture DIR``) and keeps each detected test-pattern frame of the
model (good header CRC, the model's hash): its synchronized unit-gain payload blocks (what
the neural receiver sees), the messages that were sent (the test pattern regenerated from
the seed and the sequence number in the frame's own header), and the frame's SNR, CFO and
noise-variance estimates.
Frames are split into training and validation sets by frame (all blocks of a frame are on
the same side), so validation measures frames the receiver never saw.

Recordings are checked: metadata validated by the ``sigmf`` library, datatype ``cf32_le``,
sample rate equal to the model's, data present and matching its ``core:sha512``. A bad
recording among good ones is reported (``FrameDataset.info["skipped"]``) and skipped; when
nothing usable is left, :class:`~aeradio.core.errors.CaptureFormatError` says why.

Labels are checked against what the frames decode to (:func:`check_labels`): among the
frames whose estimated SNR is at or above the model's operating point (the lower edge of
its training Eb/N0 range), where detection errs on few blocks, a recording whose labels
disagree with both the model's receiver and minimum-distance detection of its LUT on
nearly as many blocks as chance (``1 - 1/M``) has wrong labels (a wrong test-pattern seed,
say): :class:`~aeradio.core.errors.CaptureFormatError` with the numbers, whatever the
labels were derived from.

:func:`build_symbol_dataset` keeps the probe frames too (``aeradio tx --pattern probe``)
and yields what a channel model learns from: each payload symbol sent, with its neighbours
(the ISI it suffers), the symbol received and the frame's SNR estimate
(:class:`SymbolDataset`).

Storage: one ``.npz`` (no pickle: plain arrays, the info as a JSON string).

>>> # ds = build_dataset("captures/", "models/ae-n7-k8", rng=np.random.default_rng(0))
>>> # ds.save("frames.npz"); FrameDataset.load("frames.npz").validation_set().frames
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.core.atomic import write_atomic
from aeradio.core.config import LinkConfig
from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.defaults import DEFAULT_VALIDATION_FRACTION
from aeradio.core.errors import CaptureFormatError, ConfigError, short_repr
from aeradio.core.npy import read_npy_header
from aeradio.dsp.detection import ml_detect
from aeradio.dsp.framing import (
    PAYLOAD_PROBE,
    PAYLOAD_TEST_PATTERN,
    FrameLayout,
    Header,
    encode_header,
    pattern_messages,
)
from aeradio.dsp.probe import probe_radius, probe_symbols
from aeradio.flowgraphs.rx_chain import FrameResult, RxChain
from aeradio.radio.base import DeviceSettings
from aeradio.radio.capture import partial_recordings
from aeradio.radio.sigmf_file import SigmfFileDevice

#: Names of the payload types in messages.
_PAYLOAD_NAMES = {PAYLOAD_TEST_PATTERN: "test-pattern", PAYLOAD_PROBE: "probe"}
#: Samples read per RX chain call when scanning a recording.
READ_SAMPLES = 1 << 18
#: How to finish a recording a crash left partial.
RECOVER_HINT = "aeradio.radio.capture.recover_partial"
#: Dataset file format version (``info["format"]``).
DATASET_FORMAT = 1
#: Labels are wrong when every detector disagrees with them on at least this fraction of
#: chance (1 - 1/M) of the blocks above the operating point. With the right labels,
#: detection errs there on a few percent (tens of percent under an impairment the model
#: never saw, which fine-tuning is for); with wrong ones, on 1 - 1/M of them.
LABEL_CHANCE_FRACTION = 0.8
#: Blocks above the operating point a recording needs for its labels to be judged: with
#: 256, wrong labels of M = 2 (BLER 0.5 +- 0.03) stay above 0.8 x chance = 0.4.
LABEL_CHECK_MIN_BLOCKS = 256


@dataclass
class FrameDataset:
    """Received test-pattern frames with their known messages. F frames of B blocks of n uses.

    Attributes:
        y: [F, B, n] complex64, synchronized unit-gain payload symbols (receiver input).
        labels: [F, B] int64 in [0, M), the messages sent.
        noise_var: [F] float32, noise variance per real component (RX estimate).
        snr_db: [F] float32, RX SNR estimate (dB).
        cfo_hz: [F] float32, RX CFO estimate (Hz).
        seq: [F] int64, full frame sequence numbers (within their transmitter run).
        recording: [F] int32, index into ``info["recordings"]``.
        validation: [F] bool, True for validation frames.
        info: JSON-serializable: recordings, skipped (path, reason), sample rate, ...
    """

    y: np.ndarray
    labels: np.ndarray
    noise_var: np.ndarray
    snr_db: np.ndarray
    cfo_hz: np.ndarray
    seq: np.ndarray
    recording: np.ndarray
    validation: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.y.shape[0])

    @property
    def blocks(self) -> int:
        """Blocks in the whole dataset (F * B)."""
        return int(self.labels.size)

    def subset(self, mask: np.ndarray) -> FrameDataset:
        """The frames where ``mask`` [F] bool is True (info shared)."""
        arrays = {f.name: getattr(self, f.name)[mask] for f in fields(self) if f.name != "info"}
        return FrameDataset(**arrays, info=self.info)

    def training_set(self) -> FrameDataset:
        return self.subset(~self.validation)

    def validation_set(self) -> FrameDataset:
        return self.subset(self.validation)

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Blocks as the receiver takes them: y [F*B, n] complex64, labels [F*B] int64,
        noise_var [F*B] float32 (each frame's estimate repeated over its blocks)."""
        b = self.labels.shape[1] if self.labels.ndim == 2 else 0
        return (
            self.y.reshape(-1, self.y.shape[-1]),
            self.labels.reshape(-1),
            np.repeat(self.noise_var, b).astype(np.float32),
        )

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` (no pickle) atomically; returns the path."""
        path = Path(path)
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "info"}
        compact = self.labels.max(initial=0) < 1 << 16
        arrays["labels"] = arrays["labels"].astype(np.uint16 if compact else np.int64)
        arrays["info"] = np.array(json.dumps(self.info))
        return write_atomic(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: str | Path) -> FrameDataset:
        """Read a dataset written by :meth:`save`; :class:`CaptureFormatError` if it is not one.

        Every array's header is checked (dtype, shape, consistent frame count, total size
        at most :data:`MAX_DATASET_BYTES`) before any array is loaded.
        """
        path = Path(path)
        names = [f.name for f in fields(cls)]
        headers = _npz_headers(path, names)
        frames = headers["y"][0][0] if len(headers["y"][0]) == 3 else -1
        for name, (shape, _, dtype) in headers.items():
            want = _DATASET_ARRAYS[name]
            ndim_ok = len(shape) == want[1] and (name == "info" or shape[0] == frames)
            if dtype.kind not in want[0] or not ndim_ok:
                raise CaptureFormatError(
                    f"{path}: array {name!r} has dtype {dtype} and shape {short_repr(shape)}; "
                    f"a frame dataset has y [F, B, n] complex64 and [F]-long per-frame arrays"
                )
        total = sum(math.prod(s) * d.itemsize for s, _, d in headers.values())
        if total > MAX_DATASET_BYTES:
            raise CaptureFormatError(
                f"{path}: arrays of {total / 2**30:.1f} GiB; a dataset holds at most "
                f"{MAX_DATASET_BYTES / 2**30:.0f} GiB"
            )
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {n: z[n] for n in names}
        except (OSError, ValueError) as exc:
            raise CaptureFormatError(f"{path}: not a readable frame dataset: {exc}") from None
        try:
            info = json.loads(str(arrays.pop("info")))
        except (json.JSONDecodeError, RecursionError) as exc:
            raise CaptureFormatError(f"{path}: dataset info is not JSON: {exc}") from None
        arrays["labels"] = arrays["labels"].astype(np.int64)
        ds = cls(**arrays, info=info if isinstance(info, dict) else {})
        if ds.y.dtype != SAMPLE_DTYPE or ds.y.ndim != 3 or ds.labels.shape != ds.y.shape[:2]:
            raise CaptureFormatError(f"{path}: y must be [F, B, n] complex64 with labels [F, B]")
        return ds


#: Size of a dataset's arrays at most (a capture of 1e5 frames of the default model is ~0.4 GiB).
MAX_DATASET_BYTES = 4 << 30
#: Array name -> (allowed dtype kinds, ndim) of a dataset file.
_DATASET_ARRAYS: dict[str, tuple[str, int]] = {
    "y": ("c", 3), "labels": ("iu", 2), "noise_var": ("f", 1), "snr_db": ("f", 1), "cfo_hz": ("f", 1),
    "seq": ("iu", 1), "recording": ("iu", 1), "validation": ("b", 1), "info": ("U", 0),
}


def _npz_headers(path: Path, names: list[str]) -> dict[str, tuple[tuple[int, ...], bool, np.dtype]]:
    """The .npy header of each named member of the .npz ``path``, nothing else read."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = set(zf.namelist())
            missing = [n for n in names if f"{n}.npy" not in members]
            if missing:
                raise CaptureFormatError(f"{path}: not a frame dataset (no {missing[0]!r} array)")
            headers = {}
            for n in names:
                with zf.open(f"{n}.npy") as f:
                    headers[n] = read_npy_header(f)
            return headers
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CaptureFormatError(f"{path}: not a readable frame dataset: {exc}") from None


def recordings_in(directory: str | Path) -> list[Path]:
    """The SigMF recordings (``*.sigmf-meta``) of a capture directory, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CaptureFormatError(f"capture directory {directory} does not exist")
    return sorted(directory.glob("*.sigmf-meta"))


def _no_decoder(y: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
    """Block decoder that decides nothing: building a dataset needs the symbols only."""
    return np.zeros(len(y), np.int64)


def scan_recording(
    meta_path: Path, config: LinkConfig, model_hash: int, payloads: tuple[int, ...] = (PAYLOAD_TEST_PATTERN,)
) -> list[FrameResult]:
    """The test-pattern frames (``payloads``: the payload types kept, e.g. probes too) of this
    model in one recording (each with its header's seed).

    The recording's capture segments (stretches kept around frames) are read back to back:
    each frame is whole with its margins. Raises :class:`CaptureFormatError` for a bad
    recording (metadata, datatype, sample rate, a data file cut mid-sample or not matching
    its ``core:sha512``: the device's faults), and for a recording made before frames
    carried their seed whose global ``aeradio:seed`` the frames contradict (their labels
    would be wrong).
    """
    rx = RxChain(config, _no_decoder, model_hash=model_hash)
    frames: list[FrameResult] = []
    with SigmfFileDevice(meta_path, "rx", DeviceSettings(config.radio.sample_rate_hz)) as dev:
        legacy_seed = dev.metadata.seed
        dev.verify_data()  # damaged samples are refused before they are scanned
        if dev.stats.faults:
            raise CaptureFormatError("; ".join(dev.stats.faults))
        while (x := dev.read(READ_SAMPLES)) is not None:
            frames += rx.process(x)
        rx.flush()
    good = [r for r in frames if r.seq is not None and r.header and r.header.payload in payloads]
    seeds = {r.header.seed for r in good if r.header is not None and r.header.seed is not None}
    if legacy_seed is not None and seeds - {legacy_seed}:
        raise CaptureFormatError(
            f"{meta_path}: frames carry test-pattern seed(s) {sorted(seeds)} but aeradio:seed is "
            f"{legacy_seed!r}: recorded before frames carried their seed, its labels are unknown"
        )
    return good


@dataclass
class CaptureScan:
    """What :func:`scan_captures` found: ``rows`` (recording index, frame) in order, the
    recordings ``used`` and ``skipped`` (name, reason), the frames' ``validation`` [F] bool."""

    rows: list[tuple[int, FrameResult]]
    used: list[str]
    skipped: list[dict[str, str]]
    validation: np.ndarray
    model_hash: int


def split_validation(count: int, validation_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """[count] bool, True for the ``round(fraction * count)`` validation frames drawn by
    ``rng`` (at least one and one training frame left when the fraction is positive and
    there are two frames)."""
    validation = np.zeros(count, bool)
    n_val = int(round(validation_fraction * count))
    if validation_fraction > 0 and count >= 2:
        n_val = min(max(n_val, 1), count - 1)
    validation[rng.permutation(count)[:n_val]] = True
    return validation


def scan_captures(
    captures: str | Path,
    config: LinkConfig,
    model_hash: int,
    payloads: tuple[int, ...],
    validation_fraction: float,
    rng: np.random.Generator,
    on_recording: Callable[[Path, int], None] | None = None,
) -> CaptureScan:
    """The frames of ``payloads`` types of the model ``model_hash`` in every good recording
    of ``captures``, split by frame (:func:`split_validation`); bad recordings are skipped
    with their reason. Raises :class:`CaptureFormatError` when no frame is left."""
    if not 0.0 <= validation_fraction < 1.0:
        raise ConfigError(f"validation fraction must be in [0, 1), got {validation_fraction!r}")
    paths = recordings_in(captures)
    if not paths:
        raise CaptureFormatError(f"no SigMF recordings (*.sigmf-meta) in {captures}")
    used: list[str] = []
    skipped = [
        {"recording": p.name, "reason": f"unfinished recording: finish it with {RECOVER_HINT}"}
        for p in partial_recordings(captures)
    ]
    what = " or ".join(_PAYLOAD_NAMES.get(p, str(p)) for p in payloads)
    rows: list[tuple[int, FrameResult]] = []
    for path in paths:
        try:
            frames = scan_recording(path, config, model_hash, payloads)
        except CaptureFormatError as exc:
            skipped.append({"recording": path.name, "reason": str(exc)})
            continue
        if not frames:
            skipped.append({"recording": path.name, "reason": f"no {what} frames of this model"})
            continue
        rows += [(len(used), r) for r in frames]
        used.append(path.name)
        if on_recording is not None:
            on_recording(path, len(frames))
    if not rows:
        reasons = "; ".join(f"{s['recording']}: {s['reason']}" for s in skipped[:3])
        raise CaptureFormatError(f"no usable frames in {captures} ({reasons})")
    return CaptureScan(rows, used, skipped, split_validation(len(rows), validation_fraction, rng), model_hash)


def build_dataset(
    captures: str | Path,
    model_dir: str | Path,
    *,
    rng: np.random.Generator,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    on_recording: Callable[[Path, int], None] | None = None,
) -> FrameDataset:
    """Every test-pattern frame of ``model_dir``'s transmitter in the recordings of ``captures``.

    Args:
        captures: a capture directory (``*.sigmf-meta`` + ``*.sigmf-data``).
        model_dir: the model whose link config and transmitter hash the frames must match.
        rng: draws the train/validation split (by frame).
        validation_fraction: share of frames in the validation set (in [0, 1)).
        on_recording: called with (recording, frames kept) after each good recording.
    Raises:
        CaptureFormatError: no recordings, every recording bad, or no frames found.
    """
    from aeradio.core.model_dir import load_link_config, model_hash32, require_message_receiver

    config = load_link_config(model_dir)
    require_message_receiver(config, model_dir, "a dataset of captures")
    scan = scan_captures(captures, config, model_hash32(model_dir), (PAYLOAD_TEST_PATTERN,),
                         validation_fraction, rng, on_recording)
    rows = scan.rows
    headers = [r.header for _, r in rows if r.header is not None]
    labels = pattern_messages(np.array([h.seed for h in headers]), np.array([h.seq for h in headers]),
                              config.frame.blocks_per_frame, config.model.M)
    used, skipped, validation = scan.used, scan.skipped, scan.validation
    model_hash = scan.model_hash
    dataset = FrameDataset(
        y=np.stack([r.payload for _, r in rows]).astype(SAMPLE_DTYPE),
        labels=labels.astype(np.int64),
        noise_var=np.array([r.noise_var for _, r in rows], np.float32),
        snr_db=np.array([r.snr_db for _, r in rows], np.float32),
        cfo_hz=np.array([r.cfo_cps * config.radio.sample_rate_hz for _, r in rows], np.float32),
        seq=np.array([r.seq for _, r in rows], np.int64),
        recording=np.array([i for i, _ in rows], np.int32),
        validation=validation,
        info={
            "format": DATASET_FORMAT,
            "captures": str(captures),
            "recordings": used,
            "skipped": skipped,
            "model_hash32": f"{model_hash:08x}",
            "sample_rate_hz": config.radio.sample_rate_hz,
            "validation_fraction": validation_fraction,
        },
    )
    check_labels(dataset, model_dir)
    return dataset


def operating_snr_db(config: LinkConfig) -> float:
    """Es/N0 (dB, the RX chain's per-frame SNR estimate) at the lower edge of the model's
    training Eb/N0 range: at and above it, detection errs on few blocks."""
    return config.training.ebn0_db_min + 10.0 * math.log10(config.model.rate)


def check_labels(dataset: FrameDataset, model_dir: str | Path) -> None:
    """Refuse a dataset whose labels do not match what its frames decode to.

    For each recording, the frames with an SNR estimate at or above
    :func:`operating_snr_db` are decoded by the model's receiver and by minimum-distance
    detection of its LUT; when both disagree with the labels on at least
    :data:`LABEL_CHANCE_FRACTION` of chance (1 - 1/M) of at least
    :data:`LABEL_CHECK_MIN_BLOCKS` blocks, the labels are wrong.

    Raises:
        CaptureFormatError: the numbers (blocks, disagreements, BLER, chance, SNR), or
            payloads whose shape or labels do not fit the model.
    """
    from aeradio.core.model_dir import load_link_config, load_lut
    from aeradio.learning.inference import ReceiverRuntime

    config = load_link_config(model_dir)
    M, n = config.model.M, config.model.n
    where = dataset.info.get("captures", "dataset")
    if dataset.y.shape[2] != n or dataset.labels.min(initial=0) < 0 or dataset.labels.max(initial=0) >= M:
        raise CaptureFormatError(
            f"{where}: frames of [blocks, {dataset.y.shape[2]}] symbols with labels in "
            f"[{dataset.labels.min(initial=0)}, {dataset.labels.max(initial=0)}] do not fit the model "
            f"(n {n}, M {M})"
        )
    min_snr_db = operating_snr_db(config)
    chance = 1.0 - 1.0 / M
    names = dataset.info.get("recordings", [])
    lut, runtime = load_lut(model_dir), None
    for index in np.unique(dataset.recording):
        frames = (dataset.recording == index) & (dataset.snr_db >= min_snr_db)
        y, labels, noise_var = dataset.subset(frames).flat()
        if len(labels) < LABEL_CHECK_MIN_BLOCKS:
            continue
        if runtime is None:
            runtime = ReceiverRuntime.load(model_dir)
        errors = min(
            int(np.sum(ml_detect(y, lut) != labels)),
            int(np.sum(runtime.decide(y, noise_var if runtime.receiver.noise_input else None) != labels)),
        )
        bler = errors / len(labels)
        if bler >= LABEL_CHANCE_FRACTION * chance:
            name = names[index] if 0 <= index < len(names) else f"recording {index}"
            raise CaptureFormatError(
                f"{where}: {name}: the labels do not match the frames: the better of the model's receiver "
                f"and minimum-distance detection disagrees with them on {errors} of {len(labels)} blocks "
                f"(BLER {bler:.3f}, chance {chance:.3f}) in {int(frames.sum())} frames with SNR >= "
                f"{min_snr_db:.1f} dB, where they should err on few: the labels are wrong "
                "(another test-pattern seed?)"
            )


@dataclass
class SymbolDataset:
    """Sent and received payload symbols of test-pattern and probe frames: what a channel
    model p(y | x, SNR) learns from. F frames of S symbols, P payload symbols each.

    Attributes:
        sent: [F, S] complex64, every symbol each frame carried (preamble, header, pilots,
            payload), rebuilt from its header: LUT rows of the test pattern, or the probe
            symbols (:mod:`aeradio.dsp.probe`).
        y: [F, P] complex64, the synchronized unit-gain payload symbols received.
        payload_index: [P] int64, where payload symbol p sits in the frame.
        snr_db: [F] float32 and noise_var: [F] float32 (per real component), RX estimates.
        probe: [F] bool, True for probe frames.
        seq: [F] int64, full frame sequence numbers (within their transmitter run).
        labels: [F, B] int64, the messages of test-pattern frames (-1 in probe frames).
        validation: [F] bool.
        info: recordings, skipped, model hash, sample rate, probe radius.
    """

    sent: np.ndarray
    y: np.ndarray
    payload_index: np.ndarray
    snr_db: np.ndarray
    noise_var: np.ndarray
    probe: np.ndarray
    seq: np.ndarray
    labels: np.ndarray
    validation: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.y.shape[0])

    def subset(self, mask: np.ndarray) -> SymbolDataset:
        """The frames where ``mask`` [F] bool is True."""
        per_frame = ("sent", "y", "snr_db", "noise_var", "probe", "seq", "labels", "validation")
        arrays = {name: getattr(self, name)[mask] for name in per_frame}
        return SymbolDataset(**arrays, payload_index=self.payload_index, info=self.info)

    def training_set(self) -> SymbolDataset:
        return self.subset(~self.validation)

    def validation_set(self) -> SymbolDataset:
        return self.subset(self.validation)

    def windows(self, half_window: int) -> np.ndarray:
        """Each payload symbol with its ``half_window`` neighbours either side (the ISI it
        suffers): [F, P, 2 half_window + 1] complex64, the symbol itself in the middle;
        beyond the frame's ends, silence (zeros: the gap between frames)."""
        pad = np.zeros((self.frames, half_window), SAMPLE_DTYPE)
        padded = np.concatenate([pad, self.sent, pad], axis=1)
        index = self.payload_index[:, None] + np.arange(2 * half_window + 1)[None, :]
        return padded[:, index]

    def centre(self) -> np.ndarray:
        """The sent payload symbols: [F, P] complex64."""
        return self.sent[:, self.payload_index]


def sent_frames(
    layout: FrameLayout, lut: np.ndarray, radius: float, headers: list[Header]
) -> np.ndarray:
    """The symbols of test-pattern and probe frames, rebuilt from their headers: [F, S] complex64.

    ``radius``: the probe amplitude of the transmitter (:func:`aeradio.dsp.probe.probe_radius`).
    """
    payload = np.empty((len(headers), layout.blocks * layout.n), SAMPLE_DTYPE)
    for i, h in enumerate(headers):
        if h.payload == PAYLOAD_PROBE:
            payload[i] = probe_symbols(h.length, h.seq, payload.shape[1], radius)
        else:
            payload[i] = lut[pattern_messages(h.length, h.seq, layout.blocks, layout.M)].reshape(-1)
    bits = np.stack([encode_header(h) for h in headers]) if headers else np.zeros((0, 64), np.uint8)
    return layout.frame_symbols(bits, payload.reshape(len(headers), layout.blocks, layout.n))


def build_symbol_dataset(
    captures: str | Path,
    model_dir: str | Path,
    *,
    rng: np.random.Generator,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    on_recording: Callable[[Path, int], None] | None = None,
) -> SymbolDataset:
    """Every test-pattern and probe frame of ``model_dir``'s transmitter in ``captures``,
    as sent and received symbols (:class:`SymbolDataset`), split by frame.

    Raises:
        CaptureFormatError: no recordings, every recording bad, or no frames found.
    """
    from aeradio.core.model_dir import load_link_config, load_lut, model_hash32, require_message_receiver

    config, lut = load_link_config(model_dir), load_lut(model_dir)
    require_message_receiver(config, model_dir, "a symbol dataset of captures")
    scan = scan_captures(captures, config, model_hash32(model_dir), (PAYLOAD_TEST_PATTERN, PAYLOAD_PROBE),
                         validation_fraction, rng, on_recording)
    layout = FrameLayout(config)
    headers = [r.header for _, r in scan.rows if r.header is not None]
    probe = np.array([h.payload == PAYLOAD_PROBE for h in headers], bool)
    labels = pattern_messages(np.array([h.length for h in headers]), np.array([h.seq for h in headers]),
                              layout.blocks, layout.M)
    labels[probe] = -1
    radius = probe_radius(config, lut)
    rows = scan.rows
    return SymbolDataset(
        sent=sent_frames(layout, lut, radius, headers),
        y=np.stack([r.payload.reshape(-1) for _, r in rows if r.payload is not None]).astype(SAMPLE_DTYPE),
        payload_index=layout.payload_index.astype(np.int64),
        snr_db=np.array([r.snr_db for _, r in rows], np.float32),
        noise_var=np.array([r.noise_var for _, r in rows], np.float32),
        probe=probe,
        seq=np.array([r.seq for _, r in rows], np.int64),
        labels=labels.astype(np.int64),
        validation=scan.validation,
        info={
            "captures": str(captures),
            "recordings": scan.used,
            "skipped": scan.skipped,
            "model_hash32": f"{scan.model_hash:08x}",
            "sample_rate_hz": config.radio.sample_rate_hz,
            "probe_radius": radius,
            "probe_frames": int(probe.sum()),
            "test_pattern_frames": int((~probe).sum()),
        },
    )
