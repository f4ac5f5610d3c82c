"""The action registry: which ``service.action`` exists, what session it needs, and the handler that runs it."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import SimEvent
from .ks import KsInfo
from .params import Params

if TYPE_CHECKING:
    from .core import SimulatorCore


class Auth(enum.Enum):
    """Session an action requires."""

    NONE = "none"  # session.start, session.startWidgetSession, system.ping
    ANY_KS = "any_ks"  # appToken.startSession: a widget (user) KS is enough
    ADMIN = "admin"  # everything else in the simulator
    DOWNLOAD = "download"  # report.serve: an admin KS or a download:<id> KS (docs/kaltura.md#report-csv-url)


@dataclass(slots=True)
class RawResponse:
    """A response that bypasses the serialiser (CSV files; docs/kaltura.md#report-csv-strings). ``body`` may be a chunk
    iterator."""

    status: int
    headers: Mapping[str, str]
    body: bytes | Iterable[bytes]


@dataclass(slots=True)
class CallContext:
    """One API call being served."""

    core: SimulatorCore
    service: str
    action: str
    ks: KsInfo | None = None
    ks_string: str | None = None
    partner_id: int | None = None
    events: list[SimEvent] = field(default_factory=list)

    @property
    def now(self) -> int:
        """Simulator time."""
        return self.core.clock.now()

    def require_partner(self) -> int:
        """Partner id of the session (set for every authenticated call)."""
        if self.partner_id is None:
            raise RuntimeError(f"{self.service}.{self.action} ran without a partner")
        return self.partner_id


Handler = Callable[[CallContext, Params], Any]


@dataclass(frozen=True, slots=True)
class Action:
    """A registered action."""

    handler: Handler
    auth: Auth


class Registry:
    """Maps lower-cased ``(service, action)`` to actions; Kaltura resolves both case-insensitively."""

    def __init__(self) -> None:
        self._actions: dict[tuple[str, str], Action] = {}

    def add(self, service: str, action: str, auth: Auth, handler: Handler) -> None:
        """Register ``handler`` for ``service.action``."""
        self._actions[(service.lower(), action.lower())] = Action(handler, auth)

    def lookup(self, service: str, action: str) -> Action | None:
        """The action, or None."""
        return self._actions.get((service.lower(), action.lower()))

    def has_service(self, service: str) -> bool:
        """True when any action of ``service`` exists."""
        wanted = service.lower()
        return any(name == wanted for name, _ in self._actions)
