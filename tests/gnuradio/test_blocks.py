"""The GNU Radio blocks, run by GNU Radio's Python (a subprocess: it has no torch)."""

from __future__ import annotations

import json
import subprocess
import textwrap

import numpy as np
import pytest

from aeradio.core import model_dir as model_io
from aeradio.gnuradio.model import NumpyReceiver
from tests.gnuradio.conftest import gr_env, save_test_model

#: Blocks through the flowgraphs: several work() calls of the blocks.
BLOCKS = 5000


def run_gr(gr_python: str, script: str, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    """Run ``script`` with GNU Radio's Python and the checkout on PYTHONPATH."""
    return subprocess.run([gr_python, "-c", textwrap.dedent(script), *map(str, args)], env=gr_env(),
                          capture_output=True, text=True, timeout=timeout_s)


def run_gr_json(gr_python: str, script: str, *args: str) -> dict:
    """``script``'s last stdout line as JSON (the script must succeed)."""
    done = run_gr(gr_python, script, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mapper_and_demapper_in_a_flowgraph(gr_python, gr_model, tmp_path):
    rng = np.random.default_rng(7)
    messages = rng.integers(0, 16, BLOCKS).astype(np.int32)
    lut = model_io.load_lut(gr_model)
    y = lut[messages] + 0.3 * (rng.standard_normal((BLOCKS, 2)) + 1j * rng.standard_normal((BLOCKS, 2)))
    np.save(tmp_path / "messages.npy", messages)
    np.save(tmp_path / "y.npy", y.astype(np.complex64))
    out = run_gr_json(gr_python, """
        import json, sys
        import numpy as np
        from gnuradio import blocks, gr
        from aeradio.gnuradio.blocks import LutMapper, NeuralDemapper
        model, tmp = sys.argv[1], sys.argv[2]
        messages, y = np.load(tmp + "/messages.npy"), np.load(tmp + "/y.npy")
        tb = gr.top_block()
        src_m = blocks.vector_source_i(messages.tolist())
        src_y = blocks.vector_source_c(y.reshape(-1).tolist())
        mapper = LutMapper(model)
        llr, logprob = NeuralDemapper(model, soft="llr"), NeuralDemapper(model, soft="logprob")
        sinks = [blocks.vector_sink_c(), blocks.vector_sink_i(), blocks.vector_sink_f(4),
                 blocks.vector_sink_i(), blocks.vector_sink_f(16)]
        tb.connect(src_m, mapper, sinks[0])
        tb.connect(src_y, llr)
        tb.connect(src_y, logprob)
        tb.connect((llr, 0), sinks[1])
        tb.connect((llr, 1), sinks[2])
        tb.connect((logprob, 0), sinks[3])
        tb.connect((logprob, 1), sinks[4])
        tb.run()
        np.save(tmp + "/symbols.npy", np.array(sinks[0].data(), np.complex64))
        np.save(tmp + "/decided.npy", np.array(sinks[1].data(), np.int64))
        np.save(tmp + "/llr.npy", np.array(sinks[2].data(), np.float32).reshape(-1, 4))
        np.save(tmp + "/decided2.npy", np.array(sinks[3].data(), np.int64))
        np.save(tmp + "/logprob.npy", np.array(sinks[4].data(), np.float32).reshape(-1, 16))
        print(json.dumps({"ok": True}))
    """, gr_model, tmp_path)
    assert out == {"ok": True}
    # The mapper: each message's LUT row, in order.
    np.testing.assert_array_equal(np.load(tmp_path / "symbols.npy"), lut[messages].reshape(-1))
    # The demapper: the numpy receiver's outputs, block by block, for every soft output.
    rx = NumpyReceiver.load(gr_model)
    y = np.load(tmp_path / "y.npy")
    logp = rx.log_probs(y)
    np.testing.assert_array_equal(np.load(tmp_path / "decided.npy"), rx.decide(y))
    np.testing.assert_array_equal(np.load(tmp_path / "decided2.npy"), rx.decide(y))
    np.testing.assert_allclose(np.load(tmp_path / "logprob.npy"), logp, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "llr.npy"), rx.bit_llrs(logp), atol=1e-4)
    # The trained receiver: mostly right at this noise, and its LLR signs spell its decisions.
    assert np.mean(np.load(tmp_path / "decided.npy") == np.load(tmp_path / "messages.npy")) > 0.9


def test_byte_messages_round_trip(gr_python, gr_model):
    out = run_gr_json(gr_python, """
        import json, sys
        import numpy as np
        from gnuradio import blocks, gr
        from aeradio.gnuradio.blocks import BlerCounter, LutMapper, NeuralDemapper
        messages = np.random.default_rng(3).integers(0, 16, 3000).astype(np.uint8)
        tb = gr.top_block()
        src = blocks.vector_source_b(messages.tolist())
        mapper, demapper = LutMapper(sys.argv[1], "byte"), NeuralDemapper(sys.argv[1], "byte")
        counter, sink = BlerCounter("byte", report=False), blocks.vector_sink_b()
        tb.connect(src, mapper, demapper, sink)
        tb.connect(src, (counter, 0))
        tb.connect(demapper, (counter, 1))
        tb.run()
        print(json.dumps({"same": list(sink.data()) == messages.tolist(), "blocks": counter.block_count,
                          "errors": counter.error_count}))
    """, gr_model)
    assert out == {"same": True, "blocks": 3000, "errors": 0}


def test_bler_counter_counts_block_and_bit_errors(gr_python):
    done = run_gr(gr_python, """
        from gnuradio import blocks, gr
        from aeradio.gnuradio.blocks import BlerCounter
        tb = gr.top_block()
        sent, decided = blocks.vector_source_i([0, 5, 7, 9, 3]), blocks.vector_source_i([0, 4, 0, 9, 3])
        counter = BlerCounter()
        tb.connect(sent, (counter, 0))
        tb.connect(decided, (counter, 1))
        tb.run()
    """)
    assert done.returncode == 0, done.stderr
    # 5 vs 4 differ in 1 bit, 7 vs 0 in 3: the report is the last two lines, BLER last.
    assert done.stdout.splitlines()[-2:] == ["blocks 5 errors 2 bit_errors 4", "BLER 0.4"]


def test_out_of_range_message_ends_the_stream_with_an_error(gr_python, gr_model):
    out = run_gr_json(gr_python, """
        import json, sys
        from gnuradio import blocks, gr
        from aeradio.gnuradio.blocks import LutMapper
        tb = gr.top_block()
        src, sink = blocks.vector_source_i([1, 2, 16, 3]), blocks.vector_sink_c()
        mapper = LutMapper(sys.argv[1])
        tb.connect(src, mapper, sink)
        tb.run()  # returns: the stream ends (an exception in work() would hang the flowgraph)
        print(json.dumps({"errors": mapper.errors}))
    """, gr_model)
    assert out["errors"] == [
        "aeradio LUT mapper: message 16 is outside [0, 16) (k = 4); the stream ends here"
    ]


CONSTRUCT = """
    import json, sys
    from aeradio.core.errors import AeradioError
    from aeradio.gnuradio import blocks
    try:
        getattr(blocks, sys.argv[1])(*sys.argv[2:])
    except AeradioError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    else:
        print(json.dumps({"error": None}))
"""


@pytest.mark.parametrize("block", ["LutMapper", "NeuralDemapper"])
def test_unloadable_model_directory_fails_in_the_constructor(gr_python, gr_model, tmp_path, block):
    out = run_gr_json(gr_python, CONSTRUCT, block, tmp_path / "nothing")
    missing = f"model directory {tmp_path / 'nothing'} does not exist"
    assert out == {"error": "ModelFormatError", "message": missing}
    victim = tmp_path / "altered"
    victim.mkdir()
    for path in gr_model.iterdir():
        (victim / path.name).write_bytes(path.read_bytes())
    (victim / model_io.LUT_FILE).write_bytes((victim / model_io.LUT_FILE).read_bytes()[:-1] + b"\x00")
    out = run_gr_json(gr_python, CONSTRUCT, block, victim)
    assert out["error"] == "ModelFormatError" and "tx_lut.npy was altered" in out["message"]


def test_bad_parameters_fail_in_the_constructor(gr_python, gr_model, tmp_path):
    wide = save_test_model(tmp_path / "k9", k=9, n=4)
    out = run_gr_json(gr_python, CONSTRUCT, "LutMapper", wide, "byte")
    assert out["error"] == "ConfigError" and "at most 8 bits; this model has k = 9" in out["message"]
    out = run_gr_json(gr_python, CONSTRUCT, "NeuralDemapper", gr_model, "int", "bits")
    assert out == {"error": "ConfigError", "message": "soft must be one of none, llr, logprob, got 'bits'"}
    noisy = save_test_model(tmp_path / "noise-input", noise_input=True)
    out = run_gr_json(gr_python, CONSTRUCT, "NeuralDemapper", noisy)
    assert out["error"] == "ConfigError" and "trained with a noise input: give ebn0_db" in out["message"]


def test_blocks_import_no_torch(gr_python):
    out = run_gr_json(gr_python, """
        import json, sys
        import aeradio.gnuradio.blocks
        print(json.dumps({"torch": "torch" in sys.modules, "learning": "aeradio.learning" in sys.modules}))
    """)
    assert out == {"torch": False, "learning": False}
