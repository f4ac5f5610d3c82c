"""Push -> pull bridge: a Kaltura download writes chunks into a sink, a cleaner reads them as an iterator.

The download runs in a helper thread feeding a small bounded pipe (it blocks once ``depth`` chunks wait), so memory
stays bounded whatever the size. Used by the session reports and the weekly report jobs.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from kauto.kaltura.transport import ByteSink

R = TypeVar("R")
T = TypeVar("T")

PIPE_DEPTH = 8
"""Chunks (of the client's 64 KiB) buffered between a Kaltura download and its reader."""
_PIPE_POLL_SECONDS = 0.05


class _PipeClosedError(Exception):
    """The reading side stopped: the download is abandoned."""


_END = object()


class _ChunkPipe:
    def __init__(self, depth: int) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._closed = threading.Event()

    def write(self, data: bytes, /) -> None:
        self._put(bytes(data))

    def finish(self, error: BaseException | None) -> None:
        self._put(error if error is not None else _END)

    def close(self) -> None:
        self._closed.set()

    def chunks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, bytes):
                yield item

    def _put(self, item: object) -> None:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=_PIPE_POLL_SECONDS)
            except queue.Full:
                continue
            return
        raise _PipeClosedError


def stream_into(
    produce: Callable[[ByteSink], R],
    consume: Callable[[Iterator[bytes]], T],
    *,
    depth: int = PIPE_DEPTH,
    thread_name: str = "kaltura-download",
) -> tuple[R | None, T]:
    """Run ``produce(sink)`` (a download) in a helper thread and ``consume(chunks)`` here; both results.

    An error on either side stops both and is raised here (the download's own typed error when it failed). The
    producer's result is None when the reader stopped before the download finished.
    """
    pipe = _ChunkPipe(depth)
    produced: list[R] = []

    def download() -> None:
        try:
            produced.append(produce(pipe))
        except _PipeClosedError:
            return
        except BaseException as error:
            pipe.finish(error)
            return
        pipe.finish(None)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name) as pool:
        future = pool.submit(download)
        try:
            value = consume(pipe.chunks())
        finally:
            pipe.close()  # unblocks the download if the reader stopped early or failed
        future.result()
    return (produced[0] if produced else None), value
