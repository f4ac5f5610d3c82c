"""The Reports Microservice (docs/kaltura.md#reports-microservice, from Kaltura's guides only): generate a report, poll,
download.

``POST /api/v1/report/generate {reportName, reportParameters}`` -> ``{sessionId}``;
``POST /api/v1/report/serve {sessionId, statusOnly: true}`` -> ``{status}`` (pending, in_progress, completed or
failed) and ``serve {sessionId}`` -> the CSV once completed. ``Authorization: Bearer <KS>`` is checked like any KS.
How long a report stays pending / in progress is set on the simulator clock; ``failures`` makes a report name fail.
The chat-and-collaboration reports come from the room sessions (:mod:`.collab_reports`): a generate request for
rooms of a virtual event needs ``virtualeventid:<id>`` in the KS privileges (403 otherwise), like Kaltura's guides say.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import collab_reports
from .errors import ApiError, invalid_ks
from .room_reports import BOM, csv_line
from .sessions import authenticate
from .synth import mix64, person_name, seed_of, unit

if TYPE_CHECKING:
    from .core import SimulatorCore

GENERATE_PATH = "/api/v1/report/generate"
SERVE_PATH = "/api/v1/report/serve"

_COLUMNS: dict[str, tuple[str, ...]] = {
    "registration": ("user_id", "email", "first_name", "last_name", "registration_date", "status"),
    "pollsActivity": ("poll_id", "question", "user_id", "user_name", "answer", "answered_at"),
    "chatUserActivity": ("user_id", "user_name", "messages_sent", "reactions", "questions_asked"),
}
_DEFAULT_COLUMNS = ("row_id", "user_id", "user_name", "value")


@dataclass(slots=True)
class MicroserviceSettings:
    """Timing knobs (simulator seconds), report sizes and reports configured to fail."""

    pending_seconds: int = 30
    in_progress_seconds: int = 30
    rows: int = 20
    failures: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReportJob:
    """One generate request."""

    session_id: str
    partner_id: int
    report_name: str
    parameters: Mapping[str, Any]
    created_at: int
    ready_at: int
    completed_at: int
    failure: str | None

    def status(self, now: int) -> str:
        """pending -> in_progress -> completed (or failed) as the clock moves."""
        if now < self.ready_at:
            return "pending"
        if now < self.completed_at:
            return "in_progress"
        return "failed" if self.failure else "completed"


class JobRegistry:
    """Jobs by session id."""

    def __init__(self) -> None:
        self._jobs: dict[str, ReportJob] = {}
        self._lock = threading.Lock()

    def add(self, job: ReportJob) -> None:
        """Register a job."""
        with self._lock:
            self._jobs[job.session_id] = job

    def get(self, session_id: str) -> ReportJob | None:
        """The job, or None."""
        with self._lock:
            return self._jobs.get(session_id)


@dataclass(frozen=True, slots=True)
class MicroserviceResponse:
    """What the HTTP layer sends back, plus what the call log records."""

    status: int
    content_type: str
    body: bytes
    action: str
    partner_id: int | None
    params: Mapping[str, Any]
    error_code: str | None = None


def _json(
    status: int,
    payload: Mapping[str, Any],
    action: str,
    partner_id: int | None,
    params: Mapping[str, Any],
    error_code: str | None = None,
) -> MicroserviceResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return MicroserviceResponse(status, "application/json", body, action, partner_id, params, error_code)


def _report_csv(core: SimulatorCore, job: ReportJob) -> bytes:
    if job.report_name in collab_reports.REPORT_NAMES:
        query = collab_reports.parse_query(job.parameters)
        sessions = collab_reports.sessions_of(core, job.partner_id, query)
        return collab_reports.report_csv(core, job.report_name, sessions)
    columns = _COLUMNS.get(job.report_name, _DEFAULT_COLUMNS)
    seed = seed_of(core.seed, job.session_id)
    lines = [csv_line(columns)]
    for index in range(core.microservice.rows):
        value = mix64(seed ^ index)
        name = person_name(seed, index)
        first, _, last = name.partition(" ")
        user = f"user{index:05d}"
        cells: dict[str, object] = {
            "row_id": index + 1,
            "user_id": user,
            "email": f"{user}@example.com",
            "user_name": name,
            "first_name": first,
            "last_name": last,
            "registration_date": job.created_at - unit(value, 0, 864000),
            "status": "registered",
            "poll_id": f"poll{index % 3 + 1}",
            "question": f"Question {index % 3 + 1}",
            "answer": "ABCD"[unit(value, 8, 4)],
            "answered_at": job.created_at - unit(value, 16, 3600),
            "messages_sent": unit(value, 24, 40),
            "reactions": unit(value, 32, 25),
            "questions_asked": unit(value, 40, 5),
            "value": unit(value, 48, 1000),
        }
        lines.append(csv_line([cells[column] for column in columns]))
    return BOM + "".join(lines).encode("utf-8")


def handle(
    core: SimulatorCore,
    path: str,
    authorization: str | None,
    body: bytes,
    *,
    blocked: bool = False,
    expired: bool = False,
) -> MicroserviceResponse:
    """Serve one microservice request; ``blocked``/``expired`` come from fault rules (429, or 401 as if expired)."""
    action = "generate" if path == GENERATE_PATH else "serve"
    try:
        payload = json.loads(body.decode("utf-8")) if body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        payload = None
    params = dict(payload) if isinstance(payload, dict) else {}
    if blocked:
        return _json(429, {"error": "ACTION_BLOCKED"}, action, None, params, "ACTION_BLOCKED")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _json(401, {"error": "missing bearer token"}, action, None, params, "UNAUTHORIZED")
    try:
        if expired:
            raise invalid_ks("EXPIRED")
        ks = authenticate(core, token.strip())
    except ApiError as exc:
        return _json(401, {"error": exc.message}, action, None, params, exc.code)
    if not isinstance(payload, dict):
        return _json(400, {"error": "body must be a JSON object"}, action, ks.partner_id, params, "BAD_REQUEST")
    now = core.clock.now()
    if action == "generate":
        report_name = payload.get("reportName")
        if not isinstance(report_name, str) or not report_name:
            return _json(400, {"error": "reportName is required"}, action, ks.partner_id, params, "BAD_REQUEST")
        parameters = payload.get("reportParameters") or {}
        if report_name in collab_reports.REPORT_NAMES:
            if not isinstance(parameters, dict):
                return _json(
                    400, {"error": "reportParameters must be an object"}, action, ks.partner_id, params, "BAD_REQUEST"
                )
            try:
                query = collab_reports.parse_query(parameters)
            except collab_reports.CollabParameterError as exc:
                return _json(400, {"error": str(exc)}, action, ks.partner_id, params, "BAD_REQUEST")
            sessions = collab_reports.sessions_of(core, ks.partner_id, query)
            missing = collab_reports.required_virtual_events(sessions) - set(ks.privilege_values("virtualeventid"))
            if missing:
                error = f"KS privileges lack virtualeventid:{sorted(missing)[0]}"
                return _json(403, {"error": error}, action, ks.partner_id, params, "FORBIDDEN")
        settings = core.microservice
        session_id = core.state.random_bytes(16).hex()
        ready_at = now + settings.pending_seconds
        core.microservice_jobs.add(
            ReportJob(
                session_id=session_id,
                partner_id=ks.partner_id,
                report_name=report_name,
                parameters=parameters,
                created_at=now,
                ready_at=ready_at,
                completed_at=ready_at + settings.in_progress_seconds,
                failure=settings.failures.get(report_name),
            )
        )
        return _json(200, {"sessionId": session_id}, action, ks.partner_id, params)
    job = core.microservice_jobs.get(str(payload.get("sessionId", "")))
    if job is None or job.partner_id != ks.partner_id:
        return _json(404, {"error": "report session not found"}, action, ks.partner_id, params, "NOT_FOUND")
    status = job.status(now)
    if payload.get("statusOnly") or status != "completed":
        result: dict[str, Any] = {"status": status}
        if status == "failed":
            result["error"] = job.failure
        return _json(200, result, action, ks.partner_id, params)
    return MicroserviceResponse(200, "text/csv", _report_csv(core, job), action, ks.partner_id, params)
