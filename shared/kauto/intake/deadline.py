"""Blocking work with a hard time limit, so that a slow dependency becomes a handled error, not a Lambda kill.

The AWS clients bound each attempt (``kauto.aws.clients``), but three attempts of a stalled SQS or DynamoDB call can
still outlast the webhook's 10 s timeout. Lambda would then end the invocation between the dedupe claim and the
send, leaving a claim without a message. Running the work on a worker thread and waiting only until a deadline
lets the intake undo its claim and answer 503 in time. Abandoned work carries on in the background and may still
complete; callers must treat it as "may or may not have happened".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Generic, TypeVar, cast

T = TypeVar("T")

# Enough threads for abandoned work (each call ends within its client's own bounds) never to starve new work;
# threads start only when no idle one is available, so a healthy function runs one.
_MAX_WORKERS = 16


class DeadlineExceededError(Exception):
    """The work did not finish before the deadline (or there was no time left to start it)."""


class _Outcome(Generic[T]):
    """What the work returned or raised, so that only the wait itself can raise ``TimeoutError``."""

    __slots__ = ("error", "value")

    def __init__(self, call: Callable[[], T]) -> None:
        self.error: Exception | None = None
        try:
            self.value: T | None = call()
        except Exception as exc:  # handed back to the waiting thread, which re-raises it
            self.value = None
            self.error = exc

    def result(self) -> T:
        if self.error is not None:
            raise self.error
        return cast(T, self.value)


@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="kauto-deadline")


def call_before(deadline: float, clock: Callable[[], float], call: Callable[[], T]) -> T:
    """Return ``call()`` if it finishes before ``deadline`` (a ``clock`` reading); re-raise what it raises.

    Raises :class:`DeadlineExceededError` if the deadline passes first; ``call`` is not started when it already has.
    """
    remaining = deadline - clock()
    if remaining <= 0:
        raise DeadlineExceededError("no time left to start")
    future = _executor().submit(_Outcome, call)
    try:
        outcome = future.result(timeout=remaining)
    except FutureTimeoutError:
        future.cancel()
        raise DeadlineExceededError(f"no answer within {remaining:.2f} s") from None
    return outcome.result()
