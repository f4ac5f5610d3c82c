"""``make serve`` as a real process: its control routes answer bad input with 400 and a message (never an empty
reply), and any number of SIGINT/SIGTERM stop it within five seconds, its temporary files removed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 120.0  # moto server, the template's resources and the simulator, on a busy machine
STOP_SECONDS = 5.0
READY_LINE = "Ctrl-C stops."


@dataclass
class ServeProcess:
    process: subprocess.Popen[str]
    base_url: str
    tmp: Path
    lines: list[str] = field(default_factory=list)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(f"{self.base_url}{path}", data=body, method="POST")  # noqa: S310 - loopback
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[ServeProcess]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    # Its temporary files land in tmp_path, so the test can see what it leaves behind.
    env |= {"KAUTO_PORT": str(port), "TMPDIR": str(tmp_path), "KAUTO_LOG_FILE": str(tmp_path / "lambda.log")}
    process = subprocess.Popen(
        [sys.executable, "-m", "kauto_local.serve"],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = ServeProcess(process, f"http://127.0.0.1:{port}", tmp_path)
    ready = threading.Event()

    def read_output() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            served.lines.append(line.rstrip("\n"))
            if line.strip() == READY_LINE:
                ready.set()

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        if not ready.wait(STARTUP_SECONDS):
            raise AssertionError("make serve did not start:\n" + "\n".join(served.lines[-30:]))
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=5)


def test_control_routes_answer_bad_input_with_400_and_the_message(serve_process: ServeProcess) -> None:
    answers = {
        "week 99": serve_process.post("/_local/schedules/weekly-reports", b'{"week": "2026-W99"}'),
        "not JSON": serve_process.post("/_local/schedules/weekly-reports", b"{week"),
        "not an object": serve_process.post("/_local/schedules/sweep", b"[1]"),
        "seconds": serve_process.post("/_local/simulator/advance?seconds=soon", b""),
    }

    assert {what: status for what, (status, _) in answers.items()} == dict.fromkeys(answers, 400)
    messages = {what: json.loads(body)["message"] for what, (_, body) in answers.items()}
    assert "week" in messages["week 99"]
    assert "ISO week" in messages["week 99"]
    assert all(messages.values())


def test_any_number_of_signals_stops_it_within_five_seconds_and_cleans_up(serve_process: ServeProcess) -> None:
    assert list(serve_process.tmp.glob("kauto-serve-*"))  # the signed example's body file, while it runs
    started = time.monotonic()

    # A burst: later signals land while the first one's shutdown runs (they must neither hang nor cut it short).
    for signum in [signal.SIGTERM, signal.SIGINT] * 10:
        serve_process.process.send_signal(signum)
        time.sleep(0.01)
    code = serve_process.process.wait(timeout=30)

    assert time.monotonic() - started < STOP_SECONDS
    assert code == 0
    assert list(serve_process.tmp.glob("kauto-serve-*")) == []
    assert serve_process.lines[-1] == "Stopped."
