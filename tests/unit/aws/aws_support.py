"""Constants and test doubles shared by the output adapter tests (import as ``from aws_support import ...``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from botocore.exceptions import ClientError
from helpers import SettableClock

REGION = "us-east-1"
BUCKET = "kauto-reports-test"
LEDGER_TABLE = "kauto-ledger-test"


class FakeClock(SettableClock):
    """A settable clock (unix seconds) for TTLs and alert periods; no sleeping in tests."""

    def __init__(self, now: float = 1_735_900_000.0) -> None:  # 2025-01-03T10:26:40Z
        super().__init__(now)


class ClientSpy:
    """Delegates to a (moto) boto3 client, records the operations called, and can make the n-th call of one fail."""

    def __init__(self, client: Any, fail: tuple[str, int] | None = None, code: str = "InternalError") -> None:
        self._client = client
        self._fail = fail
        self._code = code
        self.calls: list[str] = []
        self._counts: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name == "get_paginator" or not callable(attribute):
            return attribute

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            self._counts[name] += 1
            if self._fail == (name, self._counts[name]):
                raise ClientError({"Error": {"Code": self._code, "Message": "injected"}}, name)
            return attribute(**kwargs)

        return call
