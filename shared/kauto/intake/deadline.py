"""Blocking calls with a hard time limit, so that a slow dependency becomes a handled error, not a Lambda kill.

The AWS clients bound each attempt (``kauto.aws.clients``), but three attempts of a stalled SQS or DynamoDB call can
still outlast the webhook's 10 s timeout. Lambda would then end the invocation between the dedupe claim and the
send, leaving a claim without a message. Running the call on a worker thread and waiting only until a deadline
lets the intake undo its claim and answer 503 in time. The abandoned call carries on in the background and may
still complete; callers must treat a timed-out write as "may or may not have happened".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")

# Enough threads for abandoned calls (each ends within its client's own bounds) never to starve new ones; threads
# are only started when no idle one is available, so a healthy function uses one.
_MAX_WORKERS = 16


class DeadlineExceededError(Exception):
    """The call did not finish before the deadline (or there was no time left to start it)."""


@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="kauto-deadline")


def call_before(deadline: float, clock: Callable[[], float], call: Callable[[], T]) -> T:
    """Return ``call()`` if it finishes before ``deadline`` (a ``clock`` reading); re-raise what it raises.

    Raises :class:`DeadlineExceededError` if the deadline passes first; ``call`` is not started when it already has.
    """
    remaining = deadline - clock()
    if remaining <= 0:
        raise DeadlineExceededError("no time left to start the call")
    future = _executor().submit(call)
    # wait() rather than result(timeout): a TimeoutError raised by the call itself must not pass for ours.
    done, _ = wait((future,), timeout=remaining)
    if not done:
        future.cancel()
        raise DeadlineExceededError(f"no answer within {remaining:.2f} s")
    return future.result()
