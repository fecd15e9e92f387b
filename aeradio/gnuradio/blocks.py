"""GNU Radio blocks of an aeradio model: the LUT mapper, the neural demapper, a BLER counter.

Run by GNU Radio's Python (Debian's ``/usr/bin/python3`` with ``python3-numpy``), with
the checkout on ``PYTHONPATH``; they need neither torch nor the safetensors package
(:mod:`aeradio.gnuradio.model`). The GRC definitions are in ``aeradio/gnuradio/grc/``
(README.md, "GNU Radio").

- :class:`LutMapper` (``gr.interp_block``, interpolation n): one message per input item
  (``int32``, or ``uint8`` for k <= 8) -> the n complex64 symbols of its LUT row. To map a
  byte stream, unpack it into k-bit chunks first (``blocks.packed_to_unpacked_bb(k,
  gr.GR_MSB_FIRST)``, k <= 8), as for GNU Radio's ``chunks_to_symbols``.
- :class:`NeuralDemapper` (``gr.decim_block``, decimation n): synchronized symbols (one
  block of n symbols, aligned, on the LUT's unit-energy scale) -> the receiver's message
  per block, and optionally a second output of one float32 vector per block: bit LLRs
  ``[k]`` (``soft="llr"``) or the message log-probabilities ``[M]`` (``soft="logprob"``).
- :class:`BlerCounter` (``gr.sync_block`` sink): sent and decided messages -> block and
  bit error counts; when the flowgraph stops it prints ``blocks B errors E bit_errors b``
  and then ``BLER <value>`` on stdout.

A model directory the blocks cannot load raises :class:`~aeradio.core.errors.ModelFormatError`
(or :class:`~aeradio.core.errors.ConfigError` for a bad parameter) in the constructor.
A message outside ``[0, M)`` at the mapper's input is logged as an error and ends the
mapper's stream (``WORK_DONE``): an exception in ``work`` would stop only that block's
thread and leave the flowgraph hanging.

Keep a reference to every Python block while the flowgraph runs (GRC's generated code
does; ``tb.connect(src, LutMapper(...), ...)`` with a temporary crashes GNU Radio 3.10).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gnuradio import gr

from aeradio.core.errors import ConfigError
from aeradio.gnuradio.model import SOFT_OUTPUTS, GnuRadioModel, check_item_type

#: ``gr.WORK_DONE`` as an int: the Python gateway of interp/decim blocks compares work()'s
#: result with 0, which fails (and hangs the flowgraph) for the enum itself.
WORK_DONE = int(gr.WORK_DONE)


class LutMapper(gr.interp_block):
    """Messages (``item_type`` "int": int32, "byte": uint8) -> n complex64 symbols each."""

    def __init__(self, model_dir: str | Path, item_type: str = "int") -> None:
        model = GnuRadioModel(model_dir)
        dtype = check_item_type(item_type, model.k)
        gr.interp_block.__init__(
            self, name="aeradio_lut_mapper", in_sig=[dtype], out_sig=[np.complex64], interp=model.n
        )
        self.model = model
        self.errors: list[str] = []

    def work(self, input_items: list[np.ndarray], output_items: list[np.ndarray]) -> int:
        n, M = self.model.n, self.model.M
        messages = input_items[0][: len(output_items[0]) // n].astype(np.int64)
        bad = (messages < 0) | (messages >= M)
        if np.any(bad):
            message = (
                f"aeradio LUT mapper: message {int(messages[bad][0])} is outside [0, {M}) "
                f"(k = {self.model.k}); the stream ends here"
            )
            self.errors.append(message)
            self.logger.error(message)
            return WORK_DONE
        output_items[0][: len(messages) * n] = self.model.lut[messages].reshape(-1)
        return len(messages) * n


class NeuralDemapper(gr.decim_block):
    """n synchronized complex64 symbols -> the receiver's message (and a soft output).

    ``soft``: "none", "llr" (a second output of float32 vectors ``[k]``) or "logprob"
    (``[M]``). ``ebn0_db``: the Eb/N0 the receiver's noise input is set from, required only
    by receivers trained with ``model.noise_input``.
    """

    def __init__(
        self, model_dir: str | Path, item_type: str = "int", soft: str = "none", ebn0_db: float | None = None
    ) -> None:
        model = GnuRadioModel(model_dir)
        dtype = check_item_type(item_type, model.k)
        if soft not in SOFT_OUTPUTS:
            raise ConfigError(f"soft must be one of {', '.join(SOFT_OUTPUTS)}, got {soft!r}")
        noise_var = model.noise_var(ebn0_db)
        out_sig: list = [dtype]
        if soft != "none":
            out_sig.append((np.float32, model.k if soft == "llr" else model.M))
        gr.decim_block.__init__(
            self, name="aeradio_neural_demapper", in_sig=[np.complex64], out_sig=out_sig, decim=model.n
        )
        self.model, self.soft, self.noise_var = model, soft, noise_var

    def work(self, input_items: list[np.ndarray], output_items: list[np.ndarray]) -> int:
        count = len(output_items[0])
        y = input_items[0][: count * self.model.n].reshape(count, self.model.n)
        receiver = self.model.receiver
        if self.soft == "none":
            output_items[0][:] = receiver.decide(y, self.noise_var)
            return count
        logp = receiver.log_probs(y, self.noise_var)
        output_items[0][:] = logp.argmax(axis=1)
        output_items[1][:] = logp if self.soft == "logprob" else receiver.bit_llrs(logp)
        return count


class BlerCounter(gr.sync_block):
    """Two message streams (sent, decided) -> block and bit error counts; a sink.

    ``report``: print ``blocks B errors E bit_errors b`` and ``BLER <value>`` (``nan``
    when nothing was compared) on stdout when the flowgraph stops.
    """

    def __init__(self, item_type: str = "int", report: bool = True) -> None:
        dtype = check_item_type(item_type, 1)
        gr.sync_block.__init__(self, name="aeradio_bler_counter", in_sig=[dtype, dtype], out_sig=None)
        self.report = report
        self.block_count = 0
        self.error_count = 0
        self.bit_error_count = 0

    def work(self, input_items: list[np.ndarray], output_items: list[np.ndarray]) -> int:
        sent, decided = (np.asarray(items, np.int64) for items in input_items)
        diff = sent ^ decided
        self.block_count += len(diff)
        self.error_count += int(np.count_nonzero(diff))
        self.bit_error_count += int(sum(bin(int(d)).count("1") for d in diff[diff != 0]))
        return len(diff)

    def bler(self) -> float:
        """Block error rate so far (nan before the first block)."""
        return self.error_count / self.block_count if self.block_count else float("nan")

    def stop(self) -> bool:
        if self.report:
            print(f"blocks {self.block_count} errors {self.error_count} bit_errors {self.bit_error_count}")
            print(f"BLER {self.bler():.6g}", flush=True)
        return True
