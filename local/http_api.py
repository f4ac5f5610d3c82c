"""A local stand-in for the HTTP API: turns HTTP requests into API Gateway (payload 2.0) events for the real handlers.

Routes come from the HttpApi events of template.yaml, so the local endpoint serves exactly the deployed paths.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kauto_local.runtime import LocalLambdaRuntime
from kauto_local.stack import load_template

# API Gateway passes these through as text; anything else arrives base64-encoded.
TEXT_CONTENT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")
MAX_BODY_BYTES = 10 * 1024 * 1024  # the HTTP API payload limit


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path_template: str
    function_id: str
    pattern: re.Pattern[str]

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path_template}"


def routes_from_template(template: Mapping[str, Any]) -> list[Route]:
    """Every HttpApi event of every function in the template."""
    routes = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            path = event["Properties"]["Path"]
            pattern = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")
            routes.append(Route(event["Properties"]["Method"].upper(), path, logical_id, pattern))
    return routes


class LocalHttpApi:
    """Serves the template's routes on 127.0.0.1 (``port`` 0: any free port) and invokes the mapped function for each
    request."""

    def __init__(self, runtime: LocalLambdaRuntime, routes: list[Route] | None = None, port: int = 0) -> None:
        self._runtime = runtime
        self._routes = routes if routes is not None else routes_from_template(load_template())
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalHttpApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Route one request; returns status, headers and body as API Gateway would send them."""
        for route in self._routes:
            match = route.pattern.match(path)
            if match and route.method == method:
                event = api_gateway_event(route, match.groupdict(), path, query, headers, body)
                return api_gateway_response(self._runtime.invoke(route.function_id, event))
        return 404, {"content-type": "application/json"}, b'{"message":"Not Found"}'

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._reply(413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}')
                    return
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                headers = {k.lower(): v for k, v in self.headers.items()}
                self._reply(*api.handle(self.command, path, query, headers, body))

            def _reply(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Request lines would repeat what the handlers log already."""

        return Handler


def api_gateway_event(
    route: Route, path_parameters: Mapping[str, str], path: str, query: str, headers: Mapping[str, str], body: bytes
) -> dict[str, Any]:
    """An HTTP API payload format 2.0 event, as API Gateway builds it."""
    content_type = headers.get("content-type", "").lower()
    is_text = content_type.startswith(TEXT_CONTENT_TYPES)
    try:
        text = body.decode("utf-8") if is_text else None
    except UnicodeDecodeError:
        text = None
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": dict(headers),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "http": {
                "method": route.method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "pathParameters": dict(path_parameters),
        "body": text if text is not None else base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": text is None,
    }


def api_gateway_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """Map a handler's return value to an HTTP response the way HTTP API payload 2.0 does."""
    if isinstance(result, dict) and "statusCode" in result:
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        return int(result["statusCode"]), headers, raw
    return 200, {"content-type": "application/json"}, json.dumps(result).encode("utf-8")
