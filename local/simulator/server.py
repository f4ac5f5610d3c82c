"""The loopback HTTP(S) front end: routing, parameter parsing, multirequest, serialisation and fault injection.

Paths served (docs/kaltura.md#api-requests):
- ``/api_v3/service/<service>/action/<action>[/<name>/<value>...]`` and the same under ``/api_v3/index.php/``;
- ``/api_v3/service/multirequest`` (also ``/api_v3/?service=multirequest``);
- ``/api_v3/?service=...&action=...`` (legacy form);
- the Reports Microservice ``/api/v1/report/generate`` and ``/api/v1/report/serve``
  (docs/kaltura.md#reports-microservice).
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import errors, microservice
from .api import Auth, CallContext, RawResponse
from .calllog import CallLog, CallRecord
from .core import SimulatorCore
from .errors import ApiError, invalid_ks
from .events import SimEvent
from .faults import API_KINDS, TRANSPORT_KINDS, FaultKind, FaultRule, Faults
from .ks import KsInfo
from .params import Params, merge, nest, parse_form, parse_json_body, parse_path_params, redact
from .serialize import is_api_exception, kaltura_json, kaltura_xml_response
from .sessions import authenticate

LOG = logging.getLogger(__name__)

MAX_REQUEST_BODY = 64 * 1024 * 1024
_CHUNK = 64 * 1024
_REFERENCE = re.compile(r"\{(\d+):result(?::([^}]*))?\}")
_COMMON_MULTIREQUEST = ("ks", "partnerId", "clientTag")


@dataclass(slots=True)
class Outcome:
    """What one HTTP request produces before transport faults are applied."""

    status: int
    headers: dict[str, str]
    body: bytes | Iterable[bytes]


@dataclass(slots=True)
class Route:
    """Where a request goes. ``kind`` is ``call``, ``multirequest``, ``microservice`` or ``not_found``;
    ``key`` is what fault rules match (``service/action``, ``multirequest``, ``microservice/<action>``)."""

    kind: str
    key: str
    path: str
    service: str = ""
    action: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def _resolve_path(value: Any, path: str | None) -> Any:
    """Follow ``a:b:0`` into a previous multirequest result; None when it does not exist."""
    if not path:
        return value
    for part in path.split(":"):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _substitute(value: Any, results: list[Any]) -> Any:
    """Replace ``{N:result[:path]}`` references (docs/kaltura.md#multirequest) inside string parameters."""
    if isinstance(value, dict):
        return {key: _substitute(item, results) for key, item in value.items()}
    if not isinstance(value, str) or "{" not in value:
        return value

    def lookup(match: re.Match[str]) -> Any:
        index = int(match.group(1)) - 1
        if not 0 <= index < len(results) or is_api_exception(results[index]):
            return None
        return _resolve_path(results[index], match.group(2))

    whole = _REFERENCE.fullmatch(value)
    if whole:
        found = lookup(whole)
        return value if found is None or isinstance(found, dict | list) else found

    def replace(match: re.Match[str]) -> str:
        found = lookup(match)
        return match.group(0) if found is None or isinstance(found, dict | list) else str(found)

    return _REFERENCE.sub(replace, value)


class SimulatorApp:
    """Request handling shared by the http and https listeners."""

    def __init__(self, core: SimulatorCore, faults: Faults, calls: CallLog, stopping: threading.Event) -> None:
        self.core = core
        self.faults = faults
        self.calls = calls
        self.stopping = stopping

    # ---- API calls --------------------------------------------------------------------------------------------

    def run_call(
        self,
        service: str,
        action: str,
        params: dict[str, Any],
        *,
        path: str = "",
        multirequest_index: int | None = None,
    ) -> tuple[Any, list[SimEvent]]:
        """Run one API call; returns the result (or a serialisable error object) and the events it raised."""
        fired: list[FaultRule] = []
        ctx = CallContext(self.core, service, action)
        ks_string = params.get("ks")
        ks_string = str(ks_string) if ks_string not in (None, "") else None
        try:
            spec = self.core.registry.lookup(service, action)
            if spec is None:
                if self.core.registry.has_service(service):
                    raise ApiError(errors.ACTION_DOES_NOT_EXISTS, action, service)
                raise ApiError(errors.SERVICE_DOES_NOT_EXISTS, service)
            fired = self.faults.draw(API_KINDS, f"{service}/{action}", path)
            for rule in fired:
                if rule.kind is FaultKind.ACTION_BLOCKED:
                    raise ApiError(errors.ACTION_BLOCKED, action, service)
            expired = any(rule.kind is FaultKind.EXPIRED_KS for rule in fired)
            ks = self._session(ctx, spec.auth, ks_string, expired=expired)
            ctx.ks, ctx.ks_string = ks, ks_string
            with self.core.state.lock:
                result = spec.handler(ctx, Params(params))
            if isinstance(result, RawResponse) and multirequest_index is not None:
                raise ApiError(errors.INTERNAL_SERVERL_ERROR, message="file responses cannot be part of a multirequest")
            error_code = None
        except ApiError as exc:
            result, error_code = exc.to_api(), exc.code
        except Exception:  # a simulator bug must surface to the client as Kaltura would, and in the log
            LOG.exception("simulator action %s.%s failed", service, action)
            error = ApiError(errors.INTERNAL_SERVERL_ERROR)
            result, error_code = error.to_api(), error.code
        partner_id = ctx.partner_id
        if partner_id is None and str(params.get("partnerId", "")).isdigit():
            partner_id = int(params["partnerId"])
        self.calls.append(
            CallRecord(
                service=service,
                action=action,
                partner_id=partner_id,
                params=redact({key: value for key, value in params.items() if key not in ("service", "action")}),
                error_code=error_code,
                at=self.core.clock.now(),
                faults=tuple(rule.label() for rule in fired),
                multirequest_index=multirequest_index,
            )
        )
        return result, ctx.events if error_code is None else []

    def _session(self, ctx: CallContext, auth: Auth, ks_string: str | None, *, expired: bool) -> KsInfo | None:
        """The call's session as its action requires (docs/kaltura.md#api-errors: MISSING_KS, INVALID_KS,
        SERVICE_FORBIDDEN)."""
        if auth is Auth.NONE:
            return None
        if ks_string is None:
            raise ApiError(errors.MISSING_KS)
        if expired:
            raise invalid_ks("EXPIRED")
        info = authenticate(self.core, ks_string)
        ctx.partner_id = info.partner_id
        if auth is Auth.ADMIN and not info.is_admin:
            raise ApiError(errors.SERVICE_FORBIDDEN, f"{ctx.service}->{ctx.action}")
        return info

    def run_multirequest(self, params: dict[str, Any], path: str) -> tuple[list[Any], list[SimEvent]]:
        """docs/kaltura.md#multirequest: calls in index order, each inheriting ks/partnerId/clientTag; one failure does
        not stop the rest."""
        common = {key: params[key] for key in _COMMON_MULTIREQUEST if key in params}
        indexes = sorted(int(key) for key in params if key.isdigit() and isinstance(params[key], dict))
        results: list[Any] = []
        events: list[SimEvent] = []
        for index in indexes:
            call = merge(common, _substitute(params[str(index)], results))
            service = str(call.pop("service", ""))
            action = str(call.pop("action", ""))
            result, call_events = self.run_call(service, action, call, path=path, multirequest_index=index)
            results.append(result)
            events += call_events
        return results, events

    # ---- HTTP -------------------------------------------------------------------------------------------------

    def route(self, method: str, target: str, headers: Any, body: bytes) -> Route:
        """Where the request goes, with its merged parameters (query < path params < body)."""
        split = urlsplit(target)
        path = split.path
        if path in (microservice.GENERATE_PATH, microservice.SERVE_PATH):
            action = "generate" if path == microservice.GENERATE_PATH else "serve"
            return Route("microservice", f"microservice/{action}", path, "microservice", action)
        segments = [segment for segment in path.split("/") if segment]
        if not segments or segments[0] != "api_v3":
            return Route("not_found", "", path)
        segments = segments[1:]
        if segments and segments[0] == "index.php":
            segments = segments[1:]
        service = action = ""
        pairs = parse_qsl(split.query, keep_blank_values=True)
        if len(segments) >= 2 and segments[0] == "service":
            service = segments[1]
            rest = segments[2:]
            if len(rest) >= 2 and rest[0] == "action":
                action = rest[1]
                rest = rest[2:]
            pairs += parse_path_params(rest)
        content_type = (headers.get("Content-Type") or "").strip().lower()
        if method != "POST":
            params = nest(pairs)
        elif content_type == "application/json":
            # docs/kaltura.md#api-requests: JSON only for exactly application/json; anything else falls back to PHP's
            # $_POST (forms only).
            params = merge(nest(pairs), parse_json_body(body))
        elif content_type.startswith("application/x-www-form-urlencoded"):
            params = nest(pairs + parse_form(body))
        else:
            params = nest(pairs)
        service = service or str(params.pop("service", ""))
        action = action or str(params.pop("action", ""))
        if service.lower() == "multirequest":
            return Route("multirequest", "multirequest", path, "multirequest", "null", params)
        return Route("call", f"{service}/{action}", path, service, action, params)

    def execute(self, route: Route, headers: Any, body: bytes) -> tuple[Outcome, list[SimEvent]]:
        """Run the routed request and serialise its result."""
        if route.kind == "not_found":
            return Outcome(404, {"Content-Type": "text/plain"}, b"Not Found"), []
        if route.kind == "microservice":
            fired = self.faults.draw(API_KINDS, route.key, route.path)
            response = microservice.handle(
                self.core,
                route.path,
                headers.get("Authorization"),
                body,
                blocked=any(rule.kind is FaultKind.ACTION_BLOCKED for rule in fired),
                expired=any(rule.kind is FaultKind.EXPIRED_KS for rule in fired),
            )
            self.calls.append(
                CallRecord(
                    service="microservice",
                    action=response.action,
                    partner_id=response.partner_id,
                    params=redact(response.params),
                    error_code=response.error_code,
                    at=self.core.clock.now(),
                    faults=tuple(rule.label() for rule in fired),
                )
            )
            return Outcome(response.status, {"Content-Type": response.content_type}, response.body), []
        started = time.perf_counter()
        result: Any
        if route.kind == "multirequest":
            result, events = self.run_multirequest(route.params, route.path)
        else:
            result, events = self.run_call(route.service, route.action, route.params, path=route.path)
        if isinstance(result, RawResponse):
            return Outcome(result.status, dict(result.headers), result.body), events
        extra: dict[str, str] = {}
        if is_api_exception(result) and result.get("code") == "SERVICE_FORBIDDEN":
            extra["X-Kaltura"] = "error-SERVICE_FORBIDDEN"
        if str(route.params.get("format", "")) == "1":
            return Outcome(200, {"Content-Type": "application/json", **extra}, kaltura_json(result)), events
        xml = kaltura_xml_response(result, time.perf_counter() - started)
        return Outcome(200, {"Content-Type": "text/xml", **extra}, xml), events

    def record_unexecuted(self, route: Route, rules: list[FaultRule]) -> None:
        """Log a request a transport fault answered before it ran."""
        self.calls.append(
            CallRecord(
                service=route.service,
                action=route.action,
                partner_id=None,
                params={},
                error_code=None,
                at=self.core.clock.now(),
                faults=tuple(rule.label() for rule in rules),
                executed=False,
            )
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: SimulatorApp, tls: ssl.SSLContext | None) -> None:
        self.app = app
        self.tls = tls
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            # The TLS handshake runs in the handler thread (setup), so a slow client cannot stall accept().
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (and the simulator's own reset faults) are normal here.
        LOG.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "KalturaSimulator"
    timeout = 30
    # Headers and body leave in separate writes: with Nagle on, the body's last segment waits for the client's
    # delayed ACK (~40 ms on Linux) on a kept-alive connection, which would swamp the latency knob.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self, method: str) -> None:
        app = self.server.app
        arrived = time.monotonic()
        body = self._read_body()
        if body is None:
            self._send(Outcome(413, {"Content-Type": "text/plain"}, b"Request Entity Too Large"))
            self.close_connection = True
            return
        try:
            route = app.route(method, self.path, self.headers, body)
        except ApiError as exc:
            self._send(Outcome(200, {"Content-Type": "application/json"}, kaltura_json(exc.to_api())))
            return
        rules = app.faults.draw(TRANSPORT_KINDS, route.key, route.path)
        # Latency is the server's response time: the action runs meanwhile and the answer leaves no earlier than
        # `delay` after the request arrived (a page that takes 5 ms to build under 50 ms latency answers at 50 ms).
        delay = sum(rule.latency_ms for rule in rules if rule.kind is FaultKind.LATENCY) / 1000
        terminal = next((rule for rule in rules if rule.kind is not FaultKind.LATENCY), None)
        if terminal is not None and terminal.kind is not FaultKind.TRUNCATED_BODY and terminal.when == "before":
            app.record_unexecuted(route, rules)
            if not self._wait_until(arrived + delay):
                self._apply_terminal(terminal)
            return
        outcome, events = app.execute(route, self.headers, body)
        if self._wait_until(arrived + delay):
            app.core.emit(events)
            return
        try:
            if terminal is None:
                self._send(outcome)
            elif terminal.kind is FaultKind.TRUNCATED_BODY:
                self._send_truncated(outcome, terminal.after_bytes)
            else:
                self._apply_terminal(terminal)
        finally:
            app.core.emit(events)

    def _wait_until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` (monotonic); True when the simulator is stopping meanwhile."""
        left = deadline - time.monotonic()
        return left > 0 and self.server.app.stopping.wait(left)

    def _apply_terminal(self, rule: FaultRule) -> None:
        if rule.kind is FaultKind.CONNECTION_RESET:
            self._reset()
            return
        if rule.kind is FaultKind.REDIRECT:
            self._send(Outcome(rule.status, {"Location": rule.location, "Content-Type": "text/html"}, b""))
            return
        reason = self.responses.get(rule.status, ("Error",))[0]
        page = f"<html><body><h1>{rule.status} {reason}</h1></body></html>".encode()
        self._send(Outcome(rule.status, {"Content-Type": "text/html"}, page))

    def _reset(self) -> None:
        """Abort the connection with a TCP RST and no response."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            LOG.debug("reset of an already closed connection", exc_info=True)

    def _headers(self, outcome: Outcome, length: int | None) -> None:
        self.send_response(outcome.status)
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, outcome: Outcome) -> None:
        try:
            if isinstance(outcome.body, bytes):
                self._headers(outcome, len(outcome.body))
                self.wfile.write(outcome.body)
                return
            self._headers(outcome, None)
            for chunk in _chunks(outcome.body):
                self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_truncated(self, outcome: Outcome, after_bytes: int | None) -> None:
        """Promise the whole body, send part of it, close (a Content-Length body or an unterminated chunked one)."""
        self.close_connection = True
        try:
            if isinstance(outcome.body, bytes):
                cut = len(outcome.body) // 2 if after_bytes is None else min(after_bytes, len(outcome.body) - 1)
                self._headers(outcome, len(outcome.body))
                self.wfile.write(outcome.body[: max(0, cut)])
                return
            self._headers(outcome, None)
            sent = 0
            for chunk in _chunks(outcome.body):
                if after_bytes is not None and sent + len(chunk) > after_bytes:
                    chunk = chunk[: after_bytes - sent]
                if chunk:  # an empty chunk would be the terminating one: a complete (empty) body, not a cut
                    self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
                if after_bytes is None or sent >= after_bytes:
                    break
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            _close_iterator(outcome.body)


def _chunks(body: Iterable[bytes]) -> Iterator[bytes]:
    """Non-empty pieces of a streamed body (generators are closed when the client goes away)."""
    iterator = iter(body)
    try:
        for chunk in iterator:
            if chunk:
                yield chunk
    finally:
        _close_iterator(iterator)


def _close_iterator(body: object) -> None:
    close = getattr(body, "close", None)
    if callable(close):
        close()


def make_server(host: str, port: int, app: SimulatorApp, tls: ssl.SSLContext | None) -> ThreadingHTTPServer:
    """Bind a threading server on ``host:port`` (port 0 picks a free one)."""
    return _Server((host, port), app, tls)
