"""Request parameters as API v3 reads them: query + path params + form or JSON body, nested ``obj[field]`` keys."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from . import errors
from .errors import ApiError

_KEY_PARTS = re.compile(r"[^\[\]:]+")
SECRET_PARAMS = frozenset({"ks", "secret", "tokenhash", "token", "password", "adminsecret", "authorization"})


def nest(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Turn flat keys ``a[b][c]`` / ``a:b:c`` (both forms appear in Kaltura clients) into nested dicts.

    Later keys win, as in PHP's ``$_POST``. Multirequest keys ``1:service`` nest the same way (``{"1": {...}}``).
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = _KEY_PARTS.findall(key)
        if not parts:
            continue
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return root


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """``application/x-www-form-urlencoded`` pairs, ``+`` as space, invalid UTF-8 replaced."""
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


def parse_path_params(segments: list[str]) -> list[tuple[str, str]]:
    """``/ks/<KS>/id/<x>/report.csv`` -> ``[("ks", KS), ("id", x)]``; a trailing odd segment is a file name."""
    pairs = []
    for index in range(0, len(segments) - 1, 2):
        pairs.append((unquote(segments[index]), unquote(segments[index + 1])))
    return pairs


def parse_json_body(body: bytes) -> dict[str, Any]:
    """A JSON object body (docs/kaltura.md#api-requests: only when Content-Type is exactly application/json)."""
    try:
        value = json.loads(body.decode("utf-8")) if body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(errors.INTERNAL_SERVERL_ERROR, message="Invalid JSON body") from exc
    if not isinstance(value, dict):
        raise ApiError(errors.INTERNAL_SERVERL_ERROR, message="JSON body must be an object")
    return value


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` into a copy of ``base`` (``extra`` wins)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def redact(params: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of ``params`` without secrets (KS, secrets, token hashes) at any depth, for the call log."""
    cleaned: dict[str, Any] = {}
    for key, value in params.items():
        if str(key).lower() in SECRET_PARAMS:
            continue
        cleaned[key] = redact(value) if isinstance(value, Mapping) else value
    return cleaned


class Params:
    """Typed, Kaltura-lenient access to one call's parameters (values may be str from forms or int from JSON)."""

    def __init__(self, values: Mapping[str, Any], prefix: str = "") -> None:
        self._values = values
        self._prefix = prefix

    @property
    def raw(self) -> Mapping[str, Any]:
        """The underlying mapping."""
        return self._values

    def _name(self, name: str) -> str:
        return f"{self._prefix}{name}"

    def get_str(self, name: str, default: str | None = None) -> str | None:
        """String value, ``default`` when absent."""
        value = self._values.get(name)
        if value is None or isinstance(value, Mapping):
            return default
        if isinstance(value, bool):
            return "1" if value else "0"
        return str(value)

    def required_str(self, name: str) -> str:
        """String value; ``MISSING_MANDATORY_PARAMETER`` when absent or empty."""
        value = self.get_str(name)
        if value is None or value == "":
            raise ApiError(errors.MISSING_MANDATORY_PARAMETER, self._name(name))
        return value

    def get_int(self, name: str, default: int | None = None) -> int | None:
        """Integer value (``"12"``, ``12`` and ``12.0`` accepted), ``default`` when absent or empty."""
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, float):
            return int(value)
        text = str(value).strip()
        try:
            return int(float(text)) if "." in text else int(text)
        except ValueError as exc:
            raise ApiError(errors.INVALID_PARAMETER_VALUE, self._name(name), value) from exc

    def required_int(self, name: str) -> int:
        """Integer value; ``MISSING_MANDATORY_PARAMETER`` when absent."""
        value = self.get_int(name)
        if value is None:
            raise ApiError(errors.MISSING_MANDATORY_PARAMETER, self._name(name))
        return value

    def get_float(self, name: str, default: float | None = None) -> float | None:
        """Float value, ``default`` when absent."""
        value = self._values.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ApiError(errors.INVALID_PARAMETER_VALUE, self._name(name), value) from exc

    def get_bool(self, name: str, default: bool = False) -> bool:
        """Boolean value (``1``/``true``/``0``/``false``)."""
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in {"1", "true"}

    def obj(self, name: str) -> Params:
        """Nested object parameter (empty when absent)."""
        value = self._values.get(name)
        return Params(value if isinstance(value, Mapping) else {}, prefix=f"{self._name(name)}:")

    def int_list(self, name: str, separator: str = ",") -> list[int] | None:
        """``"1,2,3"`` -> ``[1, 2, 3]``; None when absent."""
        text = self.get_str(name)
        if text is None or text == "":
            return None
        try:
            return [int(part) for part in text.split(separator) if part.strip()]
        except ValueError as exc:
            raise ApiError(errors.INVALID_PARAMETER_VALUE, self._name(name), text) from exc

    def str_list(self, name: str, separator: str = ",") -> list[str] | None:
        """``"a,b"`` -> ``["a", "b"]``; None when absent."""
        text = self.get_str(name)
        if text is None or text == "":
            return None
        return [part.strip() for part in text.split(separator) if part.strip()]
