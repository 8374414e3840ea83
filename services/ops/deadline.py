"""The one way the services wait for something with a time limit: poll a condition until it
holds or a monotonic deadline passes. Callers decide what running out means (raise, log)."""

from __future__ import annotations

import time
from collections.abc import Callable


class Deadline:
    """A point on the monotonic clock, `timeout_s` from when it is made."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._end = time.monotonic() + timeout_s

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def sleep(self, interval_s: float) -> bool:
        """Sleep `interval_s`, cut short at the deadline; -> False when no time is left."""
        if self.expired():
            return False
        time.sleep(min(interval_s, self.remaining()))
        return True


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float) -> bool:
    """Call `predicate` every `interval_s` until it returns true (-> True) or `timeout_s` passes
    (-> False). It runs at least once, and once more at the deadline; its exceptions propagate,
    so a predicate can stop the wait early by raising."""
    deadline = Deadline(timeout_s)
    while True:
        if predicate():
            return True
        if not deadline.sleep(interval_s):
            return False
