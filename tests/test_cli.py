"""The command line: defaults come from the library's constants and the help shows them;
``aeradio --help`` imports neither numpy nor torch."""

import re
import subprocess
import sys

import pytest

from aeradio import cli
from aeradio.core import defaults as d

DEVICE = ["--device", "zmq:tcp://127.0.0.1:1"]
#: (subcommand words, arguments that make it parse) per subcommand checked.
REQUIRED = {
    ("eval",): ["--model", "m", "--ebn0-db", "4:6:1"],
    ("tx",): ["--model", "m", *DEVICE],
    ("rx",): ["--model", "m", *DEVICE],
    ("finetune",): ["--model", "m", "--captures", "c", "--out", "o"],
    ("calibrate", "tx"): DEVICE,
    ("calibrate", "rx"): [*DEVICE, "--json", "cal.json"],
    ("channel",): ["--tx", "zmq:tcp://127.0.0.1:1", "--rx", "zmq:tcp://127.0.0.1:2",
                   "--sample-rate-hz", "1e6"],
}
#: (subcommand, option, the constant it defaults to, whether argparse holds it as its default).
DEFAULTS = [
    (("eval",), "--target-errors", d.DEFAULT_EVAL_TARGET_ERRORS, True),
    (("eval",), "--max-blocks", d.DEFAULT_EVAL_MAX_BLOCKS, True),
    (("eval",), "--seed", d.DEFAULT_EVAL_SEED, True),
    (("tx",), "--frames", d.DEFAULT_TX_FRAMES, True),
    (("tx",), "--connect-timeout-s", d.DEFAULT_CONNECT_TIMEOUT_S, True),
    (("tx",), "--write-timeout-s", d.DEFAULT_WRITE_TIMEOUT_S, True),
    (("calibrate", "tx"), "--connect-timeout-s", d.DEFAULT_CONNECT_TIMEOUT_S, True),
    (("rx",), "--threads", d.DEFAULT_RX_THREADS, True),
    (("finetune",), "--max-epochs", d.DEFAULT_FINETUNE_MAX_EPOCHS, True),
    (("finetune",), "--learning-rate", d.DEFAULT_FINETUNE_LEARNING_RATE, True),
    (("finetune",), "--validation-fraction", d.DEFAULT_VALIDATION_FRACTION, True),
    (("calibrate", "tx"), "--bursts", d.DEFAULT_CALIBRATE_TX_BURSTS, True),
    (("calibrate", "rx"), "--bursts", d.DEFAULT_CALIBRATE_RX_BURSTS, True),
    (("calibrate", "rx"), "--timeout-s", d.DEFAULT_CALIBRATE_TIMEOUT_S, True),
    (("calibrate", "rx"), "--target-snr-db", d.DEFAULT_TARGET_SNR_DB, True),
    (("calibrate", "rx"), "--target-level-dbfs", d.DEFAULT_TARGET_LEVEL_DBFS, True),
    (("calibrate", "rx"), "--threshold", d.DEFAULT_DETECTION_THRESHOLD, True),
    (("channel",), "--stats-interval-s", d.DEFAULT_STATS_INTERVAL_S, True),
    (("channel",), "--phase-noise-offset-hz", d.DEFAULT_PHASE_NOISE_OFFSET_HZ, True),
    # None turns the PA off; the help shows the value used once it is on.
    (("channel",), "--pa-rapp-p", d.DEFAULT_RAPP_P, False),
    (("channel",), "--pa-backoff-db", d.DEFAULT_RAPP_BACKOFF_DB, False),
]
IDS = [f"{' '.join(cmd)} {opt}" for cmd, opt, _, _ in DEFAULTS]


def _help(capsys, words: tuple[str, ...]) -> dict[str, str]:
    """``aeradio WORDS --help`` as {option: its help text on one line}."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*words, "--help"])
    assert exit_info.value.code == 0
    entries: dict[str, str] = {}
    option = None
    for line in capsys.readouterr().out.splitlines():
        start = re.match(r"^  (-[-\w]+)", line)
        if start:
            option = start.group(1)
            entries[option] = line.strip()
        elif option and line.startswith("    "):
            entries[option] += " " + line.strip()
        else:
            option = None
    return entries


def _shown(value: float) -> str:
    """How the help prints a default: ints as they are, floats as ``%g``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


@pytest.mark.parametrize(("words", "option", "value", "held"), DEFAULTS, ids=IDS)
def test_help_shows_the_library_default(capsys, words, option, value, held):
    entry = _help(capsys, words)[option]
    assert f"default {_shown(value)}" in entry, entry


@pytest.mark.parametrize(("words", "option", "value", "held"), DEFAULTS, ids=IDS)
def test_parsed_default_is_the_constant(words, option, value, held):
    args = cli.build_parser().parse_args([*words, *REQUIRED[words]])
    assert getattr(args, option[2:].replace("-", "_")) == (value if held else None)


def test_help_states_a_default_only_where_there_is_one(capsys):
    entries = _help(capsys, ("tx",))
    assert entries["--seed"].endswith("(default 0)")  # 0 is a value, not "no default"
    assert "default" not in entries["--overwrite"]  # a flag
    assert "default" not in entries["--file"]  # None: nothing to default to
    assert "default" not in entries["--calibration"]
    entries = _help(capsys, ("eval",))
    assert entries["--channel"].endswith("(default awgn)")


def test_library_settings_use_the_same_constants():
    import inspect

    from aeradio.calibration.gain import recommend_gains
    from aeradio.calibration.measure import measure_capture
    from aeradio.learning.evaluate import sweep_model
    from aeradio.learning.finetune import FinetuneSettings

    s = FinetuneSettings()
    assert s.max_epochs == d.DEFAULT_FINETUNE_MAX_EPOCHS
    assert s.learning_rate == d.DEFAULT_FINETUNE_LEARNING_RATE
    sweep = inspect.signature(sweep_model).parameters
    assert sweep["target_errors"].default == d.DEFAULT_EVAL_TARGET_ERRORS
    assert sweep["max_blocks"].default == d.DEFAULT_EVAL_MAX_BLOCKS
    assert sweep["seed"].default == d.DEFAULT_EVAL_SEED
    assert inspect.signature(measure_capture).parameters["threshold"].default == d.DEFAULT_DETECTION_THRESHOLD
    level = inspect.signature(recommend_gains).parameters["target_level_dbfs"].default
    assert level == d.DEFAULT_TARGET_LEVEL_DBFS


def test_help_imports_neither_numpy_nor_torch():
    code = (
        "import sys\n"
        "from aeradio import cli\n"
        "try:\n"
        "    cli.main(['channel', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('numpy', 'torch', 'zmq', 'scipy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("value", ["-3:0:1", "-20:-19:1", "-2.5:1:0.5"])
def test_a_negative_range_parses_as_typed(value, monkeypatch):
    """New-user trial: `--ebn0-db -3:0:1` was argparse's "expected one argument" (only
    `--ebn0-db=-3:0:1` worked)."""
    seen = {}

    def cmd_eval(args):
        seen["v"] = args.ebn0_db
        return 0

    monkeypatch.setattr("aeradio.apps.train.cmd_eval", cmd_eval)
    assert cli.main(["eval", "--model", "m", "--ebn0-db", value]) == 0
    assert seen["v"] == value
