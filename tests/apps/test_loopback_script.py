"""``scripts/loopback.sh`` waits for each process's ready line, never a fixed sleep.

The aeradio commands are replaced by a stub (``AERADIO``) whose timing the test controls;
the real link runs in tests/apps/test_link.py.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from aeradio.core.paths import checkout_path

SCRIPT = checkout_path("scripts") / "loopback.sh"

#: A stand-in for the aeradio command. RX_MODE: "slow" (ready after 1.5 s, then waits for tx),
#: "never" (never ready), "fails" (exits with an error before it is ready).
STUB = r"""#!/usr/bin/env bash
case "$1" in
  channel) echo "channel: PULL tcp://127.0.0.1:1 -> PUB tcp://127.0.0.1:2 (stub)" >&2
           echo $$ > "$OUT/channel.pid"; exec sleep 30 ;;
  rx) echo $$ > "$OUT/rx.pid"
      case "$RX_MODE" in
        never) exec sleep 30 ;;
        fails) echo "aeradio rx: error: the stub refuses" >&2; exit 2 ;;
      esac
      sleep 1.5
      touch "$OUT/rx-ready"
      echo "aeradio rx: ready, receiving from stub" >&2
      while [ ! -f "$OUT/tx-ran" ]; do sleep 0.05; done
      echo "aeradio rx: 3 of 3 expected frames decoded (stub)" >&2
      echo '{"frames_decoded": 3}' > "$OUT/rx.json"
      exit 0 ;;
  tx) [ -f "$OUT/rx-ready" ] && echo ready > "$OUT/tx-ran" || echo "too early" > "$OUT/tx-ran"; exit 0 ;;
esac
exit 2
"""


def _run(tmp_path: Path, rx_mode: str) -> subprocess.CompletedProcess[str]:
    stub = tmp_path / "aeradio-stub"
    stub.write_text(STUB)
    stub.chmod(0o755)
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text("{}")
    out = tmp_path / "out"
    env = dict(os.environ, AERADIO=str(stub), OUT=str(out), RX_MODE=rx_mode, START_TIMEOUT_S="3")
    return subprocess.run(["bash", str(SCRIPT), str(model)], env=env, capture_output=True, text=True,
                          timeout=60)


def _gone(pid_file: Path, timeout_s: float = 10.0) -> bool:
    """The process of ``pid_file`` stops running (exits, or is a zombie nobody reaped yet)
    within ``timeout_s``: the script's SIGTERM is delivered when the process is next
    scheduled, which on a loaded machine is not at once."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            state = Path(f"/proc/{int(pid_file.read_text())}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_tx_starts_only_after_a_slow_rx_is_ready(tmp_path: Path) -> None:
    done = _run(tmp_path, "slow")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "tx-ran").read_text().strip() == "ready"
    assert '"frames_decoded": 3' in done.stdout
    assert "3 of 3 expected frames decoded" in done.stderr
    assert _gone(tmp_path / "out" / "channel.pid")


@pytest.mark.parametrize(("mode", "message"), [
    ("never", "loopback.sh: rx not ready after 3 s (no '^aeradio rx: ready' in"),
    ("fails", "loopback.sh: rx exited before it was ready;"),
])
def test_an_rx_that_never_gets_ready_fails_clearly(tmp_path: Path, mode: str, message: str) -> None:
    done = _run(tmp_path, mode)
    assert done.returncode == 1
    assert message in done.stderr
    assert not (tmp_path / "out" / "tx-ran").exists()
    if mode == "fails":
        assert "the stub refuses" in done.stderr
    assert _gone(tmp_path / "out" / "rx.pid") and _gone(tmp_path / "out" / "channel.pid")
