"""A small progress display for the local demo: one line per step, with a spinner and live counters on a terminal.

On a terminal (``isatty``) a step's line is redrawn in place a few times a second (spinner, counters, elapsed time)
and left as a finished line when the step ends. Anywhere else (CI, a pipe, a file) each step prints exactly one
plain line when it ends, so logs stay readable. ASCII only: no assumption about the console's encoding.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

SPINNER = "|/-\\"
REDRAW_SECONDS = 0.1


class Step:
    """Counters of one running step (thread-safe: the spinner thread reads them while the step updates them)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.started = time.monotonic()
        self._counters: dict[str, int] = {}
        self._note = ""
        self._lock = threading.Lock()

    def count(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``name`` (shown as ``<value> <name>``)."""
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + amount

    def set(self, name: str, value: int) -> None:
        """Set the counter ``name``."""
        with self._lock:
            self._counters[name] = value

    def note(self, text: str) -> None:
        """A short free-text status shown after the counters (e.g. the simulator's clock)."""
        with self._lock:
            self._note = text

    def describe(self) -> str:
        """``title: 3 deliveries, 2 orders  note`` as it stands now."""
        with self._lock:
            counters = ", ".join(f"{value} {name}" for name, value in self._counters.items())
            note = self._note
        details = "  ".join(part for part in (counters, note) if part)
        return f"{self.title}: {details}" if details else self.title

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Progress:
    """Writes step lines to ``stream``; ``interactive`` defaults to whether ``stream`` is a terminal."""

    def __init__(self, stream: TextIO, *, interactive: bool | None = None) -> None:
        self._stream = stream
        self._interactive = stream.isatty() if interactive is None else interactive
        self._write_lock = threading.Lock()
        self._width = 0

    @contextmanager
    def step(self, title: str) -> Iterator[Step]:
        """Run a step: yields its :class:`Step`; prints ``ok`` with the counters when it ends, ``FAILED`` on error."""
        step = Step(title)
        done = threading.Event()
        spinner = None
        if self._interactive:
            spinner = threading.Thread(target=self._spin, args=(step, done), name="progress-spinner", daemon=True)
            spinner.start()
        try:
            yield step
        except BaseException:
            self._finish(step, done, spinner, "FAILED")
            raise
        self._finish(step, done, spinner, "ok")

    def line(self, text: str = "") -> None:
        """Print a plain line (between steps)."""
        with self._write_lock:
            self._stream.write(text + "\n")
            self._stream.flush()

    def _finish(self, step: Step, done: threading.Event, spinner: threading.Thread | None, status: str) -> None:
        done.set()
        if spinner is not None:
            spinner.join()
        self._draw(f"[{status:^6}] {step.describe()} ({step.elapsed():.1f} s)", final=True)

    def _spin(self, step: Step, done: threading.Event) -> None:
        frame = 0
        while not done.wait(REDRAW_SECONDS):
            self._draw(f"[  {SPINNER[frame % len(SPINNER)]}   ] {step.describe()} ({step.elapsed():.1f} s)")
            frame += 1

    def _draw(self, text: str, *, final: bool = False) -> None:
        with self._write_lock:
            if self._interactive:
                if not final:
                    # A frame that wrapped could not be redrawn in place: keep it within the terminal's width.
                    text = text[: max(20, shutil.get_terminal_size().columns - 1)]
                # Pad over the longer previous frame, then stay on the line until the step ends.
                self._stream.write("\r" + text.ljust(self._width) + ("\n" if final else ""))
                self._width = 0 if final else max(self._width, len(text))
            elif final:
                self._stream.write(text + "\n")
            self._stream.flush()
