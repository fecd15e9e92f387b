"""A bounded log of events: how many happened, and the last few, never an unbounded list.

A stream that restarts 374,651 times must not carry 374,651 lines into its report: an
:class:`EventLog` keeps the total count, a count per kind, and the ``keep`` most recent
messages.

>>> log = EventLog(keep=2)
>>> for i in range(5):
...     log.append(f"restart {i}", kind="restart")
>>> log.count, list(log), dict(log.kinds)
(5, ['restart 3', 'restart 4'], {'restart': 5})
>>> log.to_report()
{'count': 5, 'by_kind': {'restart': 5}, 'recent': ['restart 3', 'restart 4']}
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator

#: Messages an EventLog keeps by default.
DEFAULT_KEEP = 20


class EventLog:
    """Counts every event, keeps the last ``keep`` messages (oldest first)."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        self.count = 0
        self.kinds: Counter[str] = Counter()
        self._recent: deque[str] = deque(maxlen=keep)

    def append(self, message: str, *, kind: str = "event") -> None:
        """Record one event (``kind`` groups the counts, e.g. "restart", "malformed")."""
        self.count += 1
        self.kinds[kind] += 1
        self._recent.append(message)

    def __iter__(self) -> Iterator[str]:
        return iter(self._recent)

    def __len__(self) -> int:
        return len(self._recent)

    def __getitem__(self, index: int) -> str:
        return self._recent[index]

    def __bool__(self) -> bool:
        return self.count > 0

    def to_report(self) -> dict[str, object]:
        """JSON-ready: total count, counts by kind, the recent messages."""
        return {"count": self.count, "by_kind": dict(self.kinds), "recent": list(self._recent)}
