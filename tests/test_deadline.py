"""The shared deadline helper (services/ops/deadline.py): every bounded wait of the services uses it."""

from __future__ import annotations

import pytest

from clippings.services.ops.deadline import Deadline, wait_until


def test_wait_until_returns_true_as_soon_as_the_condition_holds():
    calls = []

    def third_time():
        calls.append(1)
        return len(calls) == 3

    assert wait_until(third_time, timeout_s=30, interval_s=0.001) is True
    assert len(calls) == 3


def test_wait_until_gives_up_at_the_deadline_having_tried_more_than_once():
    calls = []
    assert wait_until(lambda: calls.append(1) or False, timeout_s=0.05, interval_s=0.001) is False
    assert len(calls) >= 2


def test_wait_until_tries_once_even_without_time():
    assert wait_until(lambda: True, timeout_s=0, interval_s=1) is True
    assert wait_until(lambda: False, timeout_s=0, interval_s=1) is False


def test_a_raising_condition_ends_the_wait():
    def broken():
        raise RuntimeError("the process died")

    with pytest.raises(RuntimeError, match="died"):
        wait_until(broken, timeout_s=30, interval_s=0.001)


def test_deadline_counts_down_and_stops_sleeping_once_expired():
    d = Deadline(30)
    assert not d.expired() and 0 < d.remaining() <= 30
    gone = Deadline(0)
    assert gone.expired() and gone.remaining() == 0 and gone.sleep(10) is False
