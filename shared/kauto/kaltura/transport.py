"""HTTP transport: one pooled ``requests.Session`` per process, explicit timeouts, bounded retries, streaming.

Retries use exponential backoff with full jitter, never sleep past the time the Lambda has left (minus a safety
margin), shrink the timeouts to fit that time, and draw from a per-invocation retry budget shared by every call.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any, NoReturn, Protocol, TypeVar
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter

from kauto.kaltura.config import ClientSettings
from kauto.kaltura.errors import (
    Disposition,
    KalturaDeadlineError,
    KalturaDownloadTooLargeError,
    KalturaError,
    KalturaProtocolError,
    KalturaStreamInterruptedError,
    KalturaTransportError,
    KalturaURLRefusedError,
    error_from_body,
    is_api_exception,
    scrub,
)
from kauto.kaltura.urls import DownloadPolicy
from kauto.tracing import annotate, subsegment

logger = logging.getLogger(__name__)

T = TypeVar("T")

_MIN_ATTEMPT_SECONDS = 0.5  # no point starting a request with less time than this
_BOM = b"\xef\xbb\xbf"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_JSON_PROBE_LIMIT = 1024 * 1024  # an error body in place of a file is small; never buffer more than this
_USER_AGENT = "kauto-kaltura-client/1"


@dataclass(frozen=True, slots=True)
class Clock:
    """Time sources, injectable so tests never really sleep."""

    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    # Jitter only spreads retries; it needs no cryptographic randomness.
    uniform: Callable[[float, float], float] = random.uniform


class InvocationBudget:
    """Limits shared by every call of one Lambda invocation: the time left and a retry counter (thread-safe)."""

    def __init__(
        self,
        remaining_seconds: Callable[[], float] | None = None,
        *,
        max_retries: int | None = None,
        safety_margin: float = 3.0,
    ) -> None:
        self._remaining = remaining_seconds
        self._retries_left = max_retries
        self._safety_margin = safety_margin
        self._lock = threading.Lock()

    @classmethod
    def from_lambda_context(
        cls, context: Any, *, max_retries: int = 20, safety_margin: float = 3.0
    ) -> InvocationBudget:
        """Budget bound to a Lambda context's ``get_remaining_time_in_millis``."""
        return cls(
            lambda: context.get_remaining_time_in_millis() / 1000.0,
            max_retries=max_retries,
            safety_margin=safety_margin,
        )

    def time_left(self) -> float | None:
        """Seconds usable before the safety margin, or None when unbounded."""
        if self._remaining is None:
            return None
        return self._remaining() - self._safety_margin

    def take_retry(self) -> bool:
        """Consume one retry; False when the budget is spent."""
        with self._lock:
            if self._retries_left is None:
                return True
            if self._retries_left <= 0:
                return False
            self._retries_left -= 1
            return True

    @property
    def retries_left(self) -> int | None:
        """Retries still available (None = unlimited)."""
        return self._retries_left

    def __repr__(self) -> str:
        return f"InvocationBudget(time_left={self.time_left()!r}, retries_left={self._retries_left!r})"


class ByteSink(Protocol):
    """Where streamed bytes go (a file, an S3 multipart writer, a hash)."""

    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True, slots=True)
class StreamResult:
    """What a streamed download wrote: byte count, sha256 hex and number of lines."""

    bytes_written: int
    sha256: str
    lines: int


def new_http_session(pool_size: int) -> requests.Session:
    """A ``requests.Session`` with a connection pool of ``pool_size`` per host, no cookies and no adapter retries."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # One session serves every partner: never carry cookies from one partner's responses into another's requests.
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.headers["User-Agent"] = _USER_AGENT
    return session


@functools.cache
def shared_http_session(pool_size: int) -> requests.Session:
    """The process-wide session, created on first use and reused across warm invocations."""
    return new_http_session(pool_size)


@dataclass(slots=True)
class _OpenStream:
    response: requests.Response
    first: bytes
    rest: Iterator[bytes]


class HttpTransport:
    """Sends requests with timeouts and bounded retries, turning every failure into a typed :class:`KalturaError`.

    ``secrets`` returns the strings (admin secret, token, current KS) to scrub from any error text.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        http: requests.Session | None = None,
        clock: Clock | None = None,
        secrets: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        self._http = http
        self._secrets = secrets

    @property
    def http(self) -> requests.Session:
        """The session in use: the injected one, else the process-wide pooled one."""
        return self._http or shared_http_session(self.settings.pool_size)

    def scrub(self, text: str) -> str:
        """``text`` with secrets and KS-like strings removed."""
        return scrub(text, self._secrets())

    # -- retries -------------------------------------------------------------------------------------------------

    def timeouts(self, budget: InvocationBudget) -> tuple[float, float]:
        """(connect, read) timeouts shrunk to the time left; raises :class:`KalturaDeadlineError` when too little."""
        connect, read = self.settings.connect_timeout, self.settings.read_timeout
        left = budget.time_left()
        if left is None:
            return connect, read
        if left < _MIN_ATTEMPT_SECONDS:
            raise KalturaDeadlineError("not enough invocation time left to call Kaltura")
        return min(connect, left), min(read, left)

    def with_retries(self, attempt: Callable[[tuple[float, float]], T], *, what: str, budget: InvocationBudget) -> T:
        """Run ``attempt(timeouts)``; retry RETRYABLE errors with full-jitter backoff within every bound."""
        settings = self.settings
        tries = 0
        while True:
            try:
                return attempt(self.timeouts(budget))
            except KalturaError as err:
                if err.disposition is not Disposition.RETRYABLE:
                    raise
                tries += 1
                if tries >= settings.max_attempts:
                    raise
                delay = self.clock.uniform(0.0, min(settings.backoff_max, settings.backoff_base * 2 ** (tries - 1)))
                left = budget.time_left()
                if left is not None and delay + _MIN_ATTEMPT_SECONDS > left:
                    raise
                if not budget.take_retry():
                    raise
                logger.warning(
                    "kaltura call failed, retrying",
                    extra={"call": what, "attempt": tries, "delay_s": round(delay, 3), "error": type(err).__name__},
                )
                self.clock.sleep(delay)

    # -- sending -------------------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        timeout: tuple[float, float],
        form: list[tuple[str, str]] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        secret_url: bool = False,
    ) -> requests.Response:
        # Traced by the action, never the URL (a download URL carries a KS): see kauto.tracing.
        with subsegment(f"Kaltura {what}", kaltura_action=what):
            try:
                response = self.http.request(
                    method,
                    url,
                    data=form,
                    json=json_body,
                    headers=dict(headers or {}),
                    timeout=timeout,
                    stream=True,
                    allow_redirects=False,
                    verify=self.settings.ca_bundle,  # None: the session's / environment's CAs
                )
            except requests.RequestException as exc:
                raise self._transport_error(exc, what, secret_url) from (None if secret_url else exc)
            annotate(http_status=response.status_code)
        return response

    def _transport_error(self, exc: Exception, what: str, secret_url: bool) -> KalturaTransportError:
        kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
        detail = type(exc).__name__ if secret_url else self.scrub(str(exc))
        return KalturaTransportError(f"{what} {kind}: {detail}")

    @staticmethod
    def _check_status(response: requests.Response, what: str) -> None:
        status = response.status_code
        if status == 200:
            return
        response.close()
        disposition = Disposition.RETRYABLE if status >= 500 or status == 429 else Disposition.PERMANENT
        raise KalturaTransportError(f"{what} returned HTTP {status}", status=status, disposition=disposition)

    def _read_capped(self, response: requests.Response, what: str, cap: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(self.settings.stream_chunk_bytes):
                size += len(chunk)
                if size > cap:
                    raise KalturaProtocolError(f"{what} response is larger than {cap} bytes")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise self._transport_error(exc, what, secret_url=False) from exc
        finally:
            response.close()
        return b"".join(chunks)

    def _decode_json(self, body: bytes, what: str) -> Any:
        try:
            value = json.loads(body)
        except ValueError:
            # Typically a body cut off mid-way; the call may succeed when repeated.
            raise KalturaTransportError(f"{what} returned malformed or truncated JSON") from None
        if is_api_exception(value):
            raise error_from_body(value, self._secrets())
        return value

    def request_json(
        self,
        url: str,
        *,
        what: str,
        budget: InvocationBudget,
        form: list[tuple[str, str]] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """POST and decode a JSON answer; a ``KalturaAPIException`` body is raised as its typed error."""

        def attempt(timeout: tuple[float, float]) -> Any:
            response = self._send(
                "POST", url, what=what, timeout=timeout, form=form, json_body=json_body, headers=headers
            )
            self._check_status(response, what)
            body = self._read_capped(response, what, self.settings.max_response_bytes)
            return self._decode_json(body, what)

        return self.with_retries(attempt, what=what, budget=budget)

    # -- streaming -----------------------------------------------------------------------------------------------

    def stream_to_sink(
        self,
        method: str,
        url: str,
        sink: ByteSink,
        *,
        what: str,
        budget: InvocationBudget,
        max_bytes: int,
        strip_bom: bool = False,
        form: list[tuple[str, str]] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        policy: DownloadPolicy | None = None,
        on_json: Callable[[Any], KalturaError] | None = None,
    ) -> StreamResult:
        """Stream a file body into ``sink`` chunk by chunk, never holding it in memory.

        With a ``policy`` the URL and every redirect hop are checked (and the URL is treated as secret: it may embed
        a KS). A JSON body where a file was expected is raised as its ``KalturaAPIException`` (or ``on_json(value)``).
        Retries happen only before the first byte reaches the sink; a break after that raises
        :class:`KalturaStreamInterruptedError` so the caller restarts the whole object.
        """
        secret_url = policy is not None
        if policy is not None:
            policy.check(url)

        def attempt(timeout: tuple[float, float]) -> _OpenStream:
            response = self._send_following(
                method, url, what=what, timeout=timeout, form=form, json_body=json_body, headers=headers, policy=policy
            )
            self._check_status(response, what)
            rest = response.iter_content(self.settings.stream_chunk_bytes)
            try:
                first = next(rest, b"")
            except requests.RequestException as exc:
                response.close()
                raise self._transport_error(exc, what, secret_url) from (None if secret_url else exc)
            content_type = response.headers.get("Content-Type", "").lower()
            if "json" in content_type or first.lstrip()[:1] in (b"{", b"["):
                self._raise_json_instead_of_file(response, first, rest, what, on_json)
            return _OpenStream(response, first, rest)

        stream = self.with_retries(attempt, what=what, budget=budget)
        with stream.response:
            return self._pump(stream, sink, what=what, budget=budget, max_bytes=max_bytes, strip_bom=strip_bom)

    def _send_following(
        self,
        method: str,
        url: str,
        *,
        what: str,
        timeout: tuple[float, float],
        form: list[tuple[str, str]] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        policy: DownloadPolicy | None,
    ) -> requests.Response:
        # Redirects are never followed by requests itself: each hop must pass the download policy first.
        hops = 0
        secret_url = policy is not None
        while True:
            response = self._send(
                method,
                url,
                what=what,
                timeout=timeout,
                form=form,
                json_body=json_body,
                headers=headers,
                secret_url=secret_url,
            )
            if response.status_code not in _REDIRECTS:
                return response
            response.close()
            location = response.headers.get("Location")
            if policy is None or not location:
                raise KalturaProtocolError(f"{what} answered with an unexpected redirect")
            hops += 1
            if hops > policy.max_redirects:
                raise KalturaURLRefusedError(f"{what}: more than {policy.max_redirects} redirects")
            url = policy.check(urljoin(url, location))
            if response.status_code == 303:
                method, form, json_body = "GET", None, None

    def _raise_json_instead_of_file(
        self,
        response: requests.Response,
        first: bytes,
        rest: Iterator[bytes],
        what: str,
        on_json: Callable[[Any], KalturaError] | None,
    ) -> NoReturn:
        body = bytearray(first)
        try:
            for chunk in rest:
                body += chunk
                if len(body) > _JSON_PROBE_LIMIT:
                    raise KalturaProtocolError(f"{what} returned a large JSON body where a file was expected")
        except requests.RequestException:
            raise KalturaTransportError(f"{what} returned a truncated JSON body") from None
        finally:
            response.close()
        value = self._decode_json(bytes(body), what)  # raises the typed API error when it is one
        if on_json is not None:
            raise on_json(value)
        raise KalturaProtocolError(f"{what} returned JSON where a file was expected")

    def _pump(
        self,
        stream: _OpenStream,
        sink: ByteSink,
        *,
        what: str,
        budget: InvocationBudget,
        max_bytes: int,
        strip_bom: bool,
    ) -> StreamResult:
        digest = hashlib.sha256()
        written = 0
        lines = 0
        last = b""
        chunk = stream.first
        if strip_bom and chunk.startswith(_BOM):
            chunk = chunk[len(_BOM) :]
        chunks = stream.rest
        try:
            while True:
                if chunk:
                    written += len(chunk)
                    if written > max_bytes:
                        raise KalturaDownloadTooLargeError(f"{what} is larger than {max_bytes} bytes")
                    left = budget.time_left()
                    if left is not None and left <= 0:
                        raise KalturaDeadlineError(f"{what}: invocation time ran out while streaming")
                    sink.write(chunk)
                    digest.update(chunk)
                    lines += chunk.count(b"\n")
                    last = chunk
                chunk = next(chunks, b"")
                if not chunk:
                    break
        except requests.RequestException:
            raise KalturaStreamInterruptedError(
                f"{what} broke off after {written} bytes", bytes_written=written
            ) from None
        if last and not last.endswith(b"\n"):
            lines += 1
        return StreamResult(bytes_written=written, sha256=digest.hexdigest(), lines=lines)
