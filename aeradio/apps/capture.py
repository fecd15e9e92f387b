"""Capture glue: ``aeradio rx --capture`` recordings annotated with what the RX chain decoded.

:class:`~aeradio.radio.capture.CaptureRecorder` writes SigMF recordings and knows nothing of
frames; this module connects it to an :class:`~aeradio.flowgraphs.rx_chain.RxChain`
(one annotation per detected frame) and records test-pattern captures through the
loopback channel model in one process (:func:`record_loopback_capture`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from aeradio.core.constants import SAMPLE_DTYPE
from aeradio.core.errors import ConfigError
from aeradio.core.model_dir import load_link_config, load_lut, model_hash32, require_message_receiver
from aeradio.dsp.probe import frame_seed
from aeradio.flowgraphs.channel_sim import ChannelModel, ChannelSettings
from aeradio.flowgraphs.rx_chain import FrameResult, RxChain
from aeradio.flowgraphs.tx_chain import TxChain
from aeradio.radio.capture import DEFAULT_MAX_FILE_BYTES, CaptureRecorder
from aeradio.radio.sigmf_meta import AERADIO_LINK, AERADIO_MODEL_HASH32

#: Frames modulated per channel block by :func:`record_loopback_capture`.
LOOPBACK_FRAMES_PER_WRITE = 32


def frame_span_samples(rx: RxChain) -> int:
    """Samples an annotation spans: the frame's pulses, half a filter before symbol 0 to half
    a filter after its last symbol (also the margin a capture keeps around each frame)."""
    return rx.frame_samples + 2 * rx.layout.filter_delay


def annotate_results(recorder: CaptureRecorder, results: list[FrameResult], rx: RxChain) -> None:
    """Annotate the frames an :class:`~aeradio.flowgraphs.rx_chain.RxChain` just returned
    (each over :func:`frame_span_samples`), then let the recorder decide the samples before
    the chain's :attr:`~aeradio.flowgraphs.rx_chain.RxChain.settled_sample`: no frame
    starting before it will be reported any more.

    Each annotation carries what the header said: the sequence number (the full one for
    frames of this model, the header's 16 bits for others), the kind (payload type | LAST:
    probe frames have payload type 2), the LAST flag and the seed of a test-pattern or probe
    frame.
    """
    lay = rx.layout
    for r in results:
        h = r.header
        recorder.annotate_frame(
            r.start_sample - lay.filter_delay,
            frame_span_samples(rx),
            seq=r.seq if r.seq is not None else (h.seq if h is not None else None),
            cfo_hz=r.cfo_cps * recorder.sample_rate_hz,
            snr_db=r.snr_db,
            header_ok=h is not None,
            model_ok=None if h is None else r.decisions is not None,
            kind=None if h is None else h.kind,
            blocks=lay.blocks if r.block_errors is not None else None,
            block_errors=r.block_errors,
            last=None if h is None else h.last,
            seed=None if h is None else frame_seed(h),
        )
    recorder.settle(rx.settled_sample - lay.filter_delay)


def open_rx_capture(
    directory: str | Path | None,
    *,
    sample_rate_hz: float,
    center_freq_hz: float | None,
    device: str,
    rx: RxChain,
    model_hash: int,
    link_name: str,
    keep_all: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> AbstractContextManager[CaptureRecorder | None]:
    """The recorder of ``aeradio rx --capture DIR`` (a null context when ``directory`` is None).

    Keeps the detected frames with one frame span (:func:`frame_span_samples`) of margin
    either side, or every sample with ``keep_all`` (``rx --capture-all``). The global
    metadata names the model the frames were decoded for: ``aeradio:model_hash32``,
    ``aeradio:link``. The test-pattern seed travels in each frame (each annotation has
    ``aeradio:seed``), so one recording may hold frames of several seeds.
    """
    if directory is None:
        if keep_all:
            raise ConfigError("--capture-all needs --capture DIR")
        return nullcontext(None)
    return CaptureRecorder(
        directory,
        sample_rate_hz=sample_rate_hz,
        center_freq_hz=center_freq_hz,
        device=device,
        margin_samples=frame_span_samples(rx),
        keep_all=keep_all,
        max_file_bytes=max_file_bytes,
        extra_global={
            AERADIO_MODEL_HASH32: f"{model_hash:08x}",
            AERADIO_LINK: link_name,
        },
    )


def record_loopback_capture(
    model_dir: str | Path,
    directory: str | Path,
    settings: ChannelSettings,
    *,
    frames: int,
    seed: int,
    rng: np.random.Generator,
    first_seq: int = 0,
    frames_per_burst: int = LOOPBACK_FRAMES_PER_WRITE,
    idle_samples: int = 0,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    pattern: str = "test",
) -> dict[str, Any]:
    """Send test-pattern frames (``pattern="probe"``: probe frames) through the loopback
    channel model and record what RX sees.

    One process does what ``aeradio tx | aeradio channel | aeradio rx --capture`` does over
    ZMQ: the TX chain of the model's LUT, the channel simulator's streaming stages
    (``settings``, randomness from ``rng``), the RX chain with the model's receiver, and the
    capture recorder (annotations included). Frames go in bursts of ``frames_per_burst``,
    each followed by ``idle_samples`` of silence (channel noise only). Returns the RX report
    (``rx --json`` keys) with the recorder's report under ``"capture"``. The frames are one
    transmitter run: sequence numbers ``first_seq`` .. ``first_seq + frames - 1``, the last
    flagged LAST, ``seed`` in [0, 4095].
    """
    from aeradio.learning.inference import ReceiverRuntime
    from aeradio.learning.training import torch_threads

    config = load_link_config(model_dir)
    require_message_receiver(config, model_dir, "the loopback capture")  # its frames carry blocks
    model_hash = model_hash32(model_dir)
    tx = TxChain(config, load_lut(model_dir), model_hash)
    channel = ChannelModel(settings, rng)
    rx = RxChain(config, ReceiverRuntime.load(model_dir).decide, model_hash=model_hash)
    rate = config.radio.sample_rate_hz
    with torch_threads(1), open_rx_capture(
        directory, sample_rate_hz=rate, center_freq_hz=config.radio.center_freq_hz,
        device="loopback:" + settings.describe(rate), rx=rx, model_hash=model_hash, link_name=config.name,
        max_file_bytes=max_file_bytes,
    ) as recorder:
        assert recorder is not None
        idle = np.zeros(idle_samples, SAMPLE_DTYPE)
        for start in range(first_seq, first_seq + frames, frames_per_burst):
            seqs = np.arange(start, min(start + frames_per_burst, first_seq + frames))
            last = seqs[-1] == first_seq + frames - 1
            y = channel.process(np.concatenate([tx.pattern(pattern, seqs, seed, last=last), idle]))
            recorder.write(y)
            annotate_results(recorder, rx.process(y), rx)
        tail = channel.process(np.zeros(rx.seg_len, SAMPLE_DTYPE))  # lets RX finish the last frame
        recorder.write(tail)
        annotate_results(recorder, rx.process(tail), rx)
        rx.flush()
    return {**rx.report(rate, frames), "capture": recorder.report()}
