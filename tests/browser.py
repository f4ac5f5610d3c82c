"""Render a local HTML file in headless Chromium and report what a person sees (import as ``from browser import ...``).

Driver: the DevTools protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4, NUL-terminated JSON), to
Debian's ``chromium`` package. No Python dependency, no browser download, no port. Rejected: Playwright (its wheel
bundles a Node driver and is built for its own Chromium revision, which it would download), Selenium (a dozen
dependencies, trio included, and Debian's ``chromium-driver`` as a second binary; its 4.52 wheel also needs a certifi
newer than the package index offers). The pipe is what Puppeteer uses; the few commands below are stable protocol.

API (a reviewer or another test needs nothing else)::

    with Chromium.start() as browser:              # or the ``chromium`` pytest fixture (skips if not installed)
        page = browser.open(path, width=390)        # loads file://path at that viewport width, waits for load
        page.visible_texts(".chart-title")          # text of the matching elements a person can see (computed
                                                    # style: display, visibility, opacity; non-empty box)
        page.overflow_px                            # document scroll width minus viewport width (0: no overflow)
        page.clipped                                # elements whose content scrolls or is cut sideways (want [])
        page.requests                               # every URL the page tried to load (file:// and data: included)
        page.external_requests                      # the ones that would leave the machine (must be [])
        page.screenshot(dest)                       # full-page PNG at ``dest`` (parent folders created)

Every network scheme is blocked by the browser, so a page under test never reaches a network; the attempt still
shows up in ``requests``. ``make browser`` installs Chromium (Debian: ``apt-get install chromium``);
:func:`save_screenshot` writes the PNG under pytest's ``tmp_path`` and a stable copy under ``test-output/``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
TEST_OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
COMMAND_TIMEOUT_SECONDS = 30.0
_BLOCKED = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]
_LOCAL_SCHEMES = ("file:", "data:", "about:")
# Text of elements a person can see: rendered (checkVisibility with opacity and visibility), with a box.
_VISIBLE_TEXTS_JS = """
(selector) => Array.from(document.querySelectorAll(selector)).filter((el) => {
  if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) return false;
  const box = el.getBoundingClientRect();
  return box.width > 0 && box.height > 0;
}).map((el) => (el.innerText ?? el.textContent).replace(/\\s+/g, ' ').trim())
"""


class BrowserError(RuntimeError):
    """Chromium did not start, answer or load the page."""


def chromium_path() -> str | None:
    """The Chromium executable on ``PATH`` (``KAUTO_CHROMIUM`` overrides), or ``None``."""
    override = os.environ.get("KAUTO_CHROMIUM")
    if override:
        return override
    return next((found for name in CHROMIUM_CANDIDATES if (found := shutil.which(name))), None)


@dataclass
class Page:
    """A loaded page at one viewport width (see the module docstring)."""

    _browser: Chromium
    _session: str
    width: int
    requests: list[str] = field(default_factory=list)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self._browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self._session,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def visible_texts(self, selector: str) -> list[str]:
        """Text of each element matching ``selector`` that is rendered visibly (hidden ones are left out)."""
        return list(self.evaluate(f"({_VISIBLE_TEXTS_JS})({json.dumps(selector)})"))

    def count(self, selector: str) -> int:
        """How many elements match ``selector`` (visible or not)."""
        return int(self.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length"))

    @property
    def overflow_px(self) -> int:
        """How far the page is wider than the viewport (0: nothing to scroll sideways)."""
        return int(self.evaluate("document.documentElement.scrollWidth - window.innerWidth"))

    @property
    def clipped(self) -> list[str]:
        """Elements whose content is wider than their box and scrolls or is cut (``overflow-x`` not visible): the
        page does not overflow, but a person still cannot see all of it. ``tag.class`` of each."""
        return list(
            self.evaluate(
                "Array.from(document.querySelectorAll('body *')).filter((el) => "
                "getComputedStyle(el).overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 1)"
                ".map((el) => el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''))"
            )
        )

    @property
    def external_requests(self) -> list[str]:
        """Requests for anything but the local file, ``data:`` and ``about:`` URLs."""
        return [url for url in self.requests if not url.startswith(_LOCAL_SCHEMES)]

    def screenshot(self, destination: Path) -> Path:
        """A full-page PNG of the page at ``destination``."""
        metrics = self._browser.send("Page.getLayoutMetrics", session=self._session)
        size = metrics["cssContentSize"]
        shot = self._browser.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": max(size["width"], self.width), "height": size["height"], "scale": 1},
            },
            session=self._session,
        )
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(base64.b64decode(shot["data"]))
        return destination


class Chromium:
    """One headless Chromium process driven over the DevTools pipe."""

    def __init__(self, process: subprocess.Popen[bytes], to_browser: int, from_browser: int, profile: str) -> None:
        self._process = process
        self._out = to_browser
        self._in = from_browser
        self._profile = profile
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []

    @classmethod
    @contextlib.contextmanager
    def start(cls, executable: str | None = None) -> Iterator[Chromium]:
        """Start Chromium (``executable`` or :func:`chromium_path`); it is stopped and its profile removed after."""
        binary = executable or chromium_path()
        if binary is None:
            raise BrowserError("Chromium is not installed (make browser)")
        profile = tempfile.mkdtemp(prefix="kauto-chromium-")
        # fd 3: commands to the browser; fd 4: answers and events from it.
        command_read, command_write = os.pipe()
        answer_read, answer_write = os.pipe()

        def map_fds() -> None:
            # Out of the way first, so that moving one pipe end to 3 or 4 cannot close the other.
            commands, answers = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (command_read, answer_write))
            os.dup2(commands, 3)
            os.dup2(answers, 4)

        process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
            [
                binary,
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",  # tests run as root in containers, where the sandbox cannot start
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-extensions",
                "--disable-sync",
                "--hide-scrollbars",
                "--mute-audio",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,  # Python's own descriptors are not inheritable; 3 and 4 (dup2) are
            preexec_fn=map_fds,  # only fcntl and dup2 between fork and exec
        )
        os.close(command_read)
        os.close(answer_write)
        browser = cls(process, command_write, answer_read, profile)
        try:
            yield browser
        finally:
            browser.close()

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None) -> dict[str, Any]:
        """Send one DevTools command and wait for its answer (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + COMMAND_TIMEOUT_SECONDS
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error'].get('message')}")
                return dict(answer.get("result", {}))
            if "method" in answer:
                self._events.append(answer)

    def wait_for(self, event: str, session: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> dict[str, Any]:
        """The next ``event`` of ``session`` (events already received count)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self._events):
                if message.get("method") == event and message.get("sessionId") == session:
                    return self._events.pop(index)
            self._events.append(self._read(deadline))

    def open(self, path: Path, *, width: int = 1280, height: int = 800) -> Page:
        """Load the local file ``path`` in a new tab at ``width`` x ``height`` CSS pixels and wait for its load."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page.enable", "Network.enable"):
            self.send(domain, session=session)
        self.send("Network.setBlockedURLs", {"urls": _BLOCKED}, session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self._events.clear()
        self.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        self.wait_for("Page.loadEventFired", session)
        page = Page(self, session, width)
        page.requests = [
            str(message["params"]["request"]["url"])
            for message in self._events
            if message.get("method") == "Network.requestWillBeSent" and message.get("sessionId") == session
        ]
        return page

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        with contextlib.suppress(OSError, BrowserError):
            self.send("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._out, self._in):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise BrowserError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))


def save_screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    """``page`` as ``<tmp_path>/<name>.png``, copied to ``test-output/<name>.png`` (gitignored) for reviewers."""
    shot = page.screenshot(tmp_path / f"{name}.png")
    TEST_OUTPUT.mkdir(exist_ok=True)
    shutil.copyfile(shot, TEST_OUTPUT / shot.name)
    return shot


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    """A headless Chromium for the session; skips the test where Chromium is not installed (``make browser``)."""
    if chromium_path() is None:
        pytest.skip("Debian's chromium is not installed and could not be (run `make browser` as root)")
    with Chromium.start() as browser:
        yield browser
