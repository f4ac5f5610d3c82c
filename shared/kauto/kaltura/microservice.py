"""The Reports Microservice as a resumable job: generate, poll, download (docs/kaltura.md#reports-microservice).

Only Kaltura's guides describe this service (unverified): ``POST {base}/api/v1/report/generate``
``{reportName, reportParameters}`` -> ``{sessionId}``; ``POST {base}/api/v1/report/serve`` ``{sessionId,
statusOnly: true}`` -> ``{status}``; ``serve {sessionId}`` -> the CSV. Auth is ``Authorization: Bearer <KS>``.
A worker stores the :class:`ReportJobHandle` (it holds no secret) and re-enqueues itself instead of sleeping:
:func:`advance_job` is the one step both the weekly report jobs and the session reports take per
delivery (generate, or poll once and say whether to download, wait or give up).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from kauto.kaltura.errors import (
    KalturaConfigurationError,
    KalturaError,
    KalturaInvalidSessionError,
    KalturaProtocolError,
    KalturaTransportError,
    KalturaURLRefusedError,
    ReportJobFailedError,
    ReportJobPendingError,
)
from kauto.kaltura.transport import ByteSink, StreamResult

if TYPE_CHECKING:
    from kauto.kaltura.client import KalturaClient

T = TypeVar("T")

_COMPLETED = "completed"
_FAILED = frozenset({"failed", "error"})


class ReportJobState(enum.Enum):
    """Where a microservice report job stands."""

    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ReportJobStatus:
    """A poll result: the state and the service's own status word or error text."""

    state: ReportJobState
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ReportJobHandle:
    """A started job; JSON-serialisable (``to_dict``/``from_dict``) so it can travel in a queue message."""

    partner_id: int
    base_url: str
    session_id: str
    report_name: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        """The handle as a JSON-ready dict."""
        return {
            "partner_id": self.partner_id,
            "base_url": self.base_url,
            "session_id": self.session_id,
            "report_name": self.report_name,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReportJobHandle:
        """Rebuild a handle from :meth:`to_dict` output; raises ValueError when a field is missing or mistyped."""
        try:
            handle = cls(
                partner_id=int(data["partner_id"]),
                base_url=str(data["base_url"]),
                session_id=str(data["session_id"]),
                report_name=str(data["report_name"]),
                created_at=float(data["created_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed report job handle: {exc}") from None
        if not handle.session_id:
            raise ValueError("malformed report job handle: empty session_id")
        return handle


def _status_of(body: Any, scrub: Callable[[str], str]) -> ReportJobStatus:
    if not isinstance(body, Mapping):
        raise KalturaProtocolError("Reports Microservice status is not a JSON object")
    status = str(body.get("status") or "").lower()
    error = body.get("error") or body.get("message")
    if status == _COMPLETED:
        return ReportJobStatus(ReportJobState.COMPLETED, status)
    if status in _FAILED or error:
        return ReportJobStatus(ReportJobState.FAILED, scrub(str(error or status)))
    return ReportJobStatus(ReportJobState.PENDING, status)


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Where a job stands after :func:`advance_job`.

    ``PENDING``: poll again later (``generated`` when the job was started by this step); ``COMPLETED``: download it;
    ``FAILED``: the service said so, or (``overdue``) it stayed pending longer than allowed.
    """

    handle: ReportJobHandle
    state: ReportJobState
    detail: str = ""
    generated: bool = False
    overdue: bool = False


class ReportJobsAPI(Protocol):
    """What :func:`advance_job` needs: :class:`ReportsMicroservice` (``client.report_jobs``) or a test double."""

    def generate(self, report_name: str, parameters: Mapping[str, Any]) -> ReportJobHandle: ...

    def poll(self, handle: ReportJobHandle) -> ReportJobStatus: ...


def advance_job(
    jobs: ReportJobsAPI,
    handle: ReportJobHandle | None,
    report_name: str,
    parameters: Mapping[str, Any],
    *,
    now: float,
    max_wait_seconds: float,
) -> JobProgress:
    """One step of a job: generate it when there is no ``handle`` yet, else poll it once.

    A job still pending ``max_wait_seconds`` after it was generated counts as failed (``overdue``).
    """
    if handle is None:
        return JobProgress(jobs.generate(report_name, parameters), ReportJobState.PENDING, "generated", True)
    status = jobs.poll(handle)
    if status.state is ReportJobState.PENDING:
        waited = now - handle.created_at
        if waited > max_wait_seconds:
            detail = f"still {status.detail or 'pending'} after {int(waited)} s"
            return JobProgress(handle, ReportJobState.FAILED, detail, overdue=True)
    return JobProgress(handle, status.state, status.detail)


class ReportsMicroservice:
    """Generate / poll / download against the partner's configured ``reports_service_url``."""

    def __init__(self, client: KalturaClient) -> None:
        self._client = client

    @property
    def base_url(self) -> str:
        """The configured base URL (validated as https + reports host, or loopback, by the credentials)."""
        url = self._client.credentials.reports_service_url
        if url is None:
            raise KalturaConfigurationError("reports_service_url", "not configured for this partner")
        return url

    def _authorized(self, operation: Callable[[dict[str, str]], T]) -> T:
        """Run with a Bearer KS; a 401/403 counts as an invalid KS, refreshed once like ``INVALID_KS``."""

        def run(ks: str) -> T:
            try:
                return operation({"Authorization": f"Bearer {ks}"})
            except KalturaTransportError as err:
                if err.status in (401, 403):
                    raise KalturaInvalidSessionError(
                        "INVALID_KS", f"Reports Microservice answered HTTP {err.status}"
                    ) from None
                raise

        return self._client.with_session(run)

    def _post_json(self, path: str, body: Mapping[str, Any], what: str) -> Any:
        url = f"{self.base_url}{path}"
        return self._authorized(
            lambda headers: self._client.transport.request_json(
                url, what=what, budget=self._client.budget, json_body=dict(body), headers=headers
            )
        )

    def _check(self, handle: ReportJobHandle) -> None:
        # Handles come back from a queue message: never send a KS anywhere but the configured service.
        if handle.partner_id != self._client.partner_id or handle.base_url != self.base_url:
            raise KalturaURLRefusedError("report job handle does not match this partner's Reports Microservice")

    def generate(self, report_name: str, parameters: Mapping[str, Any]) -> ReportJobHandle:
        """Start a report; returns the handle to poll later."""
        body = self._post_json(
            "/api/v1/report/generate",
            {"reportName": report_name, "reportParameters": dict(parameters)},
            "reports microservice generate",
        )
        session_id = body.get("sessionId") if isinstance(body, Mapping) else None
        if not isinstance(session_id, str) or not session_id:
            raise KalturaProtocolError("Reports Microservice generate returned no sessionId")
        return ReportJobHandle(
            partner_id=self._client.partner_id,
            base_url=self.base_url,
            session_id=session_id,
            report_name=report_name,
            created_at=self._client.transport.clock.now(),
        )

    def poll(self, handle: ReportJobHandle) -> ReportJobStatus:
        """Ask whether the job is pending, completed or failed (``serve`` with ``statusOnly``)."""
        self._check(handle)
        body = self._post_json(
            "/api/v1/report/serve",
            {"sessionId": handle.session_id, "statusOnly": True},
            "reports microservice status",
        )
        return _status_of(body, self._client.transport.scrub)

    def download(self, handle: ReportJobHandle, sink: ByteSink, *, strip_bom: bool = True) -> StreamResult:
        """Stream the finished report into ``sink``. A status answer instead of a file raises
        :class:`ReportJobPendingError` (poll again later) or :class:`ReportJobFailedError`.
        """
        self._check(handle)
        url = f"{self.base_url}/api/v1/report/serve"

        def not_a_file(body: Any) -> KalturaError:
            status = _status_of(body, self._client.transport.scrub)
            if status.state is ReportJobState.FAILED:
                return ReportJobFailedError(f"report job failed: {status.detail}")
            return ReportJobPendingError(f"report job not ready: {status.detail or 'pending'}")

        return self._authorized(
            lambda headers: self._client.transport.stream_to_sink(
                "POST",
                url,
                sink,
                what="reports microservice download",
                budget=self._client.budget,
                max_bytes=self._client.settings.max_download_bytes,
                strip_bom=strip_bom,
                json_body={"sessionId": handle.session_id},
                headers=headers,
                on_json=not_a_file,
            )
        )
