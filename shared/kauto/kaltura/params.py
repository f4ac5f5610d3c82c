"""Form encoding of API v3 parameters (docs/kaltura.md#api-requests): nested objects flatten to ``obj[field]``.

Every request is form-encoded (the server falls back to ``$_POST`` unless Content-Type is exactly
``application/json``, docs/kaltura.md#api-requests), which keeps one encoding for single calls, multirequests and CSV
actions.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


def api_url(service_url: str, service: str, action: str | None = None) -> str:
    """``{service_url}/api_v3/service/{service}/action/{action}`` (or ``.../service/multirequest``)."""
    url = f"{service_url}/api_v3/service/{service}"
    return f"{url}/action/{action}" if action else url


def _scalar(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise TypeError(f"unsupported parameter value type {type(value).__name__}")


def flatten(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flatten ``{"filter": {"objectType": "X", "idEqual": 1}}`` to ``[("filter[objectType]", "X"), ...]``.

    ``None`` values are left out (the API default applies), as the official clients do.
    """
    fields: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if value is None:
            continue
        if isinstance(value, Mapping):
            fields.extend(flatten(value, name))
        else:
            fields.append((name, _scalar(value)))
    return fields
