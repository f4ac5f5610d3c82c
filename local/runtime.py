"""Run the real Lambda handlers in this process, the way the Lambda runtime would (handler string, env, context)."""

from __future__ import annotations

import importlib.util
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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


class LocalLambdaRuntime:
    """Loads each function's handler module once (as Lambda does on a cold start) and invokes it."""

    def __init__(self, functions: Mapping[str, LocalFunction]) -> None:
        self._functions = dict(functions)
        self._handlers: dict[str, Handler] = {}
        os.environ.update(_shared_environment(self._functions.values()))

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        function = self._functions[logical_id]
        handler = self._handlers.get(logical_id) or self._load(function)
        return handler(event, LambdaContext(function.physical_name, function.timeout))

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
