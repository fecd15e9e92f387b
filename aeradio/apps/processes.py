"""Process chores, done one way: stopping a child process, stopping a loop on a signal.

>>> with StopOnSignal() as stop:
...     stop.requested
False
"""

from __future__ import annotations

import signal
import subprocess
from types import FrameType
from typing import Any

#: Seconds a child gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT_S = 10.0


def stop_process(
    proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S
) -> int:
    """Ask a child to stop with ``sig``, kill it if it has not exited after ``timeout_s``.

    Returns its exit code. A child that already exited is only reaped.
    """
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class StopOnSignal:
    """SIGTERM and SIGINT set :attr:`reason` instead of killing the process, so a loop that
    polls :attr:`requested` can end cleanly (write its report, finish its files).

    The previous handlers are restored on exit. ``reason`` is the signal's name
    (``"SIGTERM"``, ``"SIGINT"``) once one arrived, ``exit_code`` the shell's convention for
    a process that signal ended (128 + its number: 130 for SIGINT, 143 for SIGTERM).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.reason: str | None = None
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.reason is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal's number once one arrived, else 0."""
        return 0 if self.signum is None else 128 + self.signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self.reason = signal.Signals(signum).name

    def __enter__(self) -> StopOnSignal:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
