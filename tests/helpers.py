"""Helpers shared by the tests (import as ``from helpers import ...``; ``tests/`` is on ``sys.path`` via conftest).

- :func:`load_handler` loads ``functions/<name>/app.py`` by path under a unique module name (every function's module
  is called ``app``; no ``sys.path`` games).
- :class:`FakeLambdaContext` is enough of a Lambda context for Powertools decorators; :class:`SettableClock` is
  the clock the domain's ``clock`` ports read in unit tests.
- :func:`webhook_samples` is the events generator (``events/webhook/build_events.py``): fake partner, signing and
  API Gateway event builders, and the sample notifications with their expected events.
- :func:`create_webhook_stack` creates the webhook's queue, dedupe table and partner secret in moto.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import io
import itertools
import json
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_unique = itertools.count()


def clear_all_kauto_caches() -> None:
    """Clear every module-level cached factory in loaded ``kauto`` modules (clients, settings, secrets).

    What a fresh Lambda instance would see: the next call rebuilds them from the current environment.
    """
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "kauto" or name.startswith("kauto.")):
            continue
        for value in list(vars(module).values()):
            # A class with a cached method exposes cache_clear unbound (it needs an instance): only functions.
            if inspect.isclass(value):
                continue
            cache_clear = getattr(value, "cache_clear", None)
            if callable(cache_clear):
                cache_clear()


def load_module(path: Path, prefix: str) -> ModuleType:
    """Execute the Python file at ``path`` as a fresh module named ``<prefix>_<n>``."""
    module_name = f"{prefix}_{next(_unique)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def load_handler(name: str) -> ModuleType:
    """Load ``functions/<name>/app.py`` as a new module (call again for a fresh module-level state)."""
    return load_module(REPO_ROOT / "functions" / name / "app.py", f"kauto_function_{name}")


class SettableClock:
    """Unix seconds that move only when a test says so: ``clock()`` reads, ``clock.advance(seconds)`` moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeLambdaContext:
    """The attributes Powertools and our handlers read from a Lambda context."""

    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    remaining_millis: int = 10_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Capture what the Powertools logger of the intake writes (its handler keeps the stream it was created with)."""
    from kauto.intake.telemetry import logger

    handler = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


@functools.cache
def webhook_samples() -> ModuleType:
    """The webhook sample-events generator module (builders + sample definitions)."""
    return load_module(REPO_ROOT / "events" / "webhook" / "build_events.py", "kauto_webhook_samples")


@dataclass(frozen=True)
class WebhookStack:
    """Resources of the webhook in moto."""

    queue_url: str
    table_name: str
    secret_arn: str


@dataclass
class MemoryDedupe:
    """The webhook's dedupe table in memory: the first claim of a key wins, a release frees it."""

    keys: set[str] = field(default_factory=set)

    def claim(self, key: str, token: str, *, now: float) -> bool:
        key.encode("utf-8")  # DynamoDB stores keys as UTF-8 strings
        if key in self.keys:
            return False
        self.keys.add(key)
        return True

    def release(self, key: str, token: str) -> bool:
        self.keys.discard(key)
        return True


def partner_document(**partners: dict[str, Any]) -> str:
    """Secret JSON for ``partners`` given as ``p<partner id>={...}`` keyword arguments."""
    return json.dumps({"partners": {key.removeprefix("p"): value for key, value in partners.items()}})


def create_ledger_table(dynamodb: Any, table_name: str) -> str:
    """Create the ledger table as template.yaml defines it (keys ``pk`` + ``sk``, TTL ``expires_at``)."""
    dynamodb.create_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    return table_name


def create_webhook_stack(monkeypatch: pytest.MonkeyPatch, secret_string: str) -> WebhookStack:
    """Create the queue, the dedupe table (key ``pk``, TTL ``expires_at``) and the partner secret in moto, and set
    the webhook's environment variables to them (as template.yaml does)."""
    sqs = boto3.client("sqs")
    dynamodb = boto3.client("dynamodb")
    secrets = boto3.client("secretsmanager")
    queue_url = sqs.create_queue(QueueName="events")["QueueUrl"]
    dynamodb.create_table(
        TableName="dedupe",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName="dedupe", TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    secret_arn = secrets.create_secret(Name="kaltura/partners", SecretString=secret_string)["ARN"]
    monkeypatch.setenv("EVENTS_QUEUE_URL", queue_url)
    monkeypatch.setenv("DEDUPE_TABLE", "dedupe")
    monkeypatch.setenv("PARTNER_SECRETS_ARN", secret_arn)
    return WebhookStack(queue_url=queue_url, table_name="dedupe", secret_arn=secret_arn)


def drain_queue(queue_url: str) -> list[dict[str, Any]]:
    """Receive (and delete) every message in the queue; return their JSON bodies."""
    sqs = boto3.client("sqs")
    bodies: list[dict[str, Any]] = []
    while True:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = response.get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def dedupe_rows(table_name: str) -> list[dict[str, Any]]:
    """All rows of the dedupe table (low-level attribute maps)."""
    return list(boto3.client("dynamodb").scan(TableName=table_name, ConsistentRead=True)["Items"])


# ------------------------------------------------------------------------- SHA-1 length extension, implemented here
# Kaltura signs with plain sha1(secret + body) (docs/kaltura.md#signature). Knowing one signature and the secret's
# length, an attacker can compute a valid signature for body + padding + anything: resume SHA-1 from the known digest.
def _rotate(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & 0xFFFFFFFF


def _sha1_compress(state: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    words = list(struct.unpack(">16I", block))
    for i in range(16, 80):
        words.append(_rotate(words[i - 3] ^ words[i - 8] ^ words[i - 14] ^ words[i - 16], 1))
    a, b, c, d, e = state
    for i in range(80):
        if i < 20:
            f, k = (b & c) | (~b & d), 0x5A827999
        elif i < 40:
            f, k = b ^ c ^ d, 0x6ED9EBA1
        elif i < 60:
            f, k = (b & c) | (b & d) | (c & d), 0x8F1BBCDC
        else:
            f, k = b ^ c ^ d, 0xCA62C1D6
        a, b, c, d, e = (_rotate(a, 5) + f + e + k + words[i]) & 0xFFFFFFFF, a, _rotate(b, 30), c, d
    return tuple((x + y) & 0xFFFFFFFF for x, y in zip(state, (a, b, c, d, e), strict=True))


def _sha1_padding(message_length: int) -> bytes:
    return b"\x80" + b"\x00" * ((55 - message_length) % 64) + struct.pack(">Q", message_length * 8)


def forge_sha1_extension(signature: str, secret_length: int, body: bytes, appended: bytes) -> tuple[bytes, str]:
    """Given only sig = sha1(secret + body) and len(secret): a body and signature a plain-hash verifier accepts."""
    glue = _sha1_padding(secret_length + len(body))
    forged_body = body + glue + appended
    state = struct.unpack(">5I", bytes.fromhex(signature))
    tail = appended + _sha1_padding(secret_length + len(forged_body))
    for offset in range(0, len(tail), 64):
        state = _sha1_compress(state, tail[offset : offset + 64])
    return forged_body, "".join(f"{word:08x}" for word in state)
