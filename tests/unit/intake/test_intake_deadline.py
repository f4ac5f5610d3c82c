"""call_before: the work's own result and errors pass through; a missed deadline is its own error."""

from __future__ import annotations

import threading

import pytest
from kauto.intake.deadline import DeadlineExceededError, call_before


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_result_of_work_finished_in_time_is_returned() -> None:
    assert call_before(101.0, Clock(), lambda: "done") == "done"


def test_work_errors_are_re_raised_as_they_are_even_a_timeout_error_of_its_own() -> None:
    def fails() -> None:
        raise TimeoutError("socket read timed out")

    with pytest.raises(TimeoutError, match="socket read timed out") as error:
        call_before(101.0, Clock(), fails)
    assert not isinstance(error.value, DeadlineExceededError)


def test_work_still_running_at_the_deadline_is_abandoned() -> None:
    release = threading.Event()
    try:
        with pytest.raises(DeadlineExceededError, match=r"no answer within 0\.01 s"):
            call_before(100.01, Clock(), lambda: release.wait(timeout=5))
    finally:
        release.set()


def test_work_is_not_started_when_the_deadline_has_passed() -> None:
    started: list[bool] = []

    with pytest.raises(DeadlineExceededError, match="no time left"):
        call_before(100.0, Clock(), lambda: started.append(True))
    assert started == []
