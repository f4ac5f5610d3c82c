"""What the X-Ray traces hold (``kauto.tracing``): read from the UDP datagrams the SDK sends to its daemon address.

The probe runs in a fresh interpreter with the environment Lambda gives a traced function (``LAMBDA_TASK_ROOT``, a
sampled ``_X_AMZN_TRACE_ID``), against a loopback HTTP server standing in for Kaltura and for an AWS endpoint.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

PROBE = """
import http.server, json, sys, threading
import boto3
from kauto.kaltura.config import ClientSettings
from kauto.kaltura.transport import HttpTransport, InvocationBudget
from kauto.tracing import capture_lambda_handler, subsegment, tracer

class Answer(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"id": "1_abc"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_port}"

@capture_lambda_handler
def handler(event, context):
    with subsegment("## record", partner_id=1234567, kind="entry_ready"):
        transport = HttpTransport(ClientSettings(max_attempts=1))
        transport.request_json(
            base + "/api_v3/service/baseEntry/action/get?ks=djJ8c2VjcmV0",
            what="baseEntry.get", budget=InvocationBudget(), form=[("ks", "djJ8c2VjcmV0")],
        )
        sqs = boto3.client("sqs", endpoint_url=base, region_name="us-east-1")
        try:
            sqs.list_queues()
        except Exception:
            pass  # the stand-in answers no SQS: the call is traced all the same
    return "done"

class Context:
    function_name = "kaltura-worker"
    aws_request_id = "00000000-0000-4000-8000-000000000000"

print(handler({}, Context()), tracer() is not None)
"""


def run_probe(extra_env: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(0.5)
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "_X_AMZN"))},
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": "kaltura-worker",
            "POWERTOOLS_SERVICE_NAME": "kaltura-worker",
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            **extra_env,
        }
        result = subprocess.run(  # noqa: S603 - our own interpreter and probe
            [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60, check=True
        )
        entities: list[dict[str, Any]] = []
        while True:
            try:
                datagram = daemon.recv(65536)
            except TimeoutError:
                break
            # Each datagram: a header line, then the (sub)segment document.
            entities.append(json.loads(datagram.split(b"\n", 1)[1]))
    return result.stdout.strip(), entities


def test_the_handler_the_record_the_kaltura_call_and_the_aws_call_are_traced(tmp_path: Any) -> None:
    output, entities = run_probe({"LAMBDA_TASK_ROOT": str(tmp_path)})

    assert output == "done True"
    by_name = {entity["name"]: entity for entity in entities}
    assert {"## handler", "## record", "Kaltura baseEntry.get", "sqs"} <= set(by_name)
    assert by_name["## record"]["annotations"] == {"partner_id": 1234567, "kind": "entry_ready"}
    assert by_name["Kaltura baseEntry.get"]["annotations"] == {"kaltura_action": "baseEntry.get", "http_status": 200}
    assert by_name["sqs"]["aws"]["operation"] == "ListQueues"
    assert by_name["## handler"]["annotations"]["ColdStart"] is True
    # Never the URL, the form or the response of a Kaltura call: they carry a KS and personal data.
    sent = json.dumps(entities)
    assert "djJ8c2VjcmV0" not in sent and "1_abc" not in sent and "/api_v3/" not in sent


def test_outside_lambda_nothing_is_traced_and_the_sdk_stays_unloaded() -> None:
    output, entities = run_probe({})

    assert output == "done False"
    assert entities == []
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, kauto.tracing as t; t.tracer(); print('aws_xray_sdk' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={key: value for key, value in os.environ.items() if key != "LAMBDA_TASK_ROOT"},
    )
    assert loaded.stdout.strip() == "False"


def test_tracing_can_be_turned_off_in_lambda(tmp_path: Any) -> None:
    output, entities = run_probe({"LAMBDA_TASK_ROOT": str(tmp_path), "POWERTOOLS_TRACE_DISABLED": "true"})

    assert output == "done False"
    assert entities == []
