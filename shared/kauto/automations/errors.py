"""Errors the automations raise on purpose, grouped by what the worker does with them.

- :class:`RetryLaterError`: the work cannot be done *now* (entry still converting, a concurrent worker holds the
  order). The SQS record fails and is redelivered after the queue's visibility timeout, at most ``maxReceiveCount``
  times, then it waits in the dead-letter queue.
- :class:`MalformedEventError`: the message cannot be acted on at all (a required field is missing). It is raised
  too, so that it ends in the dead-letter queue where a person can look at it.
"""

from __future__ import annotations

from kauto.errors import KautoError


class RetryLaterError(KautoError):
    """Transient: redeliver the event later."""


class MalformedEventError(KautoError):
    """The event lacks what its kind needs (e.g. an entry id); ``field`` names the missing or bad field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"event field {field}: {problem}")
        self.field = field
