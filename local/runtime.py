"""Run the real Lambda handlers in this process, the way the Lambda runtime would (handler string, env, context)."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from kauto_local.stack import LocalFunction

Handler = Callable[[dict[str, Any], Any], Any]

# Read once by Powertools when a function's module is imported; each function keeps its own name in its logs.
PER_FUNCTION_VARIABLES = frozenset({"POWERTOOLS_SERVICE_NAME"})


@dataclass(slots=True)
class LambdaContext:
    """The parts of the Lambda context object the handlers and Powertools use."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionOutput(io.TextIOBase):
    """A ``sys.stdout`` stand-in: what functions print (their logs and EMF metrics) goes to a log file, as it would
    go to CloudWatch Logs, while everything else still reaches the console."""

    def __init__(self, log_path: Path, console: Any) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("a", encoding="utf-8")
        self._console = console
        self._inside = threading.local()
        self._lock = threading.Lock()

    @contextmanager
    def function_scope(self) -> Iterator[None]:
        self._inside.active = True
        try:
            yield
        finally:
            self._inside.active = False

    def write(self, text: str) -> int:
        if getattr(self._inside, "active", False):
            with self._lock:
                return self._log.write(text)
        return int(self._console.write(text))

    def flush(self) -> None:
        self._log.flush()
        self._console.flush()


class LocalLambdaRuntime:
    """Loads each function's handler module once (as Lambda does on a cold start) and invokes it.

    With ``log_path``, function output is written there instead of the console (see :class:`FunctionOutput`).
    """

    def __init__(self, functions: Mapping[str, LocalFunction], log_path: Path | None = None) -> None:
        self._functions = dict(functions)
        self._handlers: dict[str, Handler] = {}
        self._load_lock = threading.Lock()
        self._output: FunctionOutput | None = None
        self._console = sys.stdout
        if log_path is not None:
            self._output = FunctionOutput(log_path, self._console)
            sys.stdout = self._output
        os.environ.update(_shared_environment(self._functions.values()))

    def close(self) -> None:
        if self._output is not None and sys.stdout is self._output:
            sys.stdout = self._console
            self._output.flush()

    def invoke(self, logical_id: str, event: dict[str, Any], *, request_id: str | None = None) -> Any:
        """Run the handler; ``request_id`` is the context's (an asynchronous invoke keeps one across retries)."""
        function = self._functions[logical_id]
        context = LambdaContext(function.physical_name, function.timeout)
        if request_id is not None:
            context.aws_request_id = request_id
        with self._scope():
            handler = self._handler(function)
            return handler(event, context)

    @contextmanager
    def _scope(self) -> Iterator[None]:
        if self._output is None:
            yield
        else:
            with self._output.function_scope():
                yield

    def _handler(self, function: LocalFunction) -> Handler:
        with self._load_lock:
            return self._handlers.get(function.logical_id) or self._load(function)

    def _load(self, function: LocalFunction) -> Handler:
        module_name, _, attribute = function.handler.rpartition(".")
        saved = {name: os.environ.get(name) for name in PER_FUNCTION_VARIABLES}
        os.environ.update({k: v for k, v in function.environment.items() if k in PER_FUNCTION_VARIABLES})
        try:
            module = _import_file(f"kauto_function_{function.logical_id}", function.code_dir / f"{module_name}.py")
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        handler: Handler = getattr(module, attribute)
        self._handlers[function.logical_id] = handler
        return handler


def _shared_environment(functions: Any) -> dict[str, str]:
    merged: dict[str, str] = {}
    for function in functions:
        for name, value in function.environment.items():
            if name in PER_FUNCTION_VARIABLES:
                continue
            if merged.setdefault(name, value) != value:
                raise ValueError(f"functions disagree on {name}; the local runtime shares one process environment")
    return merged


def _import_file(module_name: str, path: Any) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
