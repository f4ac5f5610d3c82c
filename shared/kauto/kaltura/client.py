"""The per-partner Kaltura API client and its cached factory.

Every call is a form-encoded POST to ``{service_url}/api_v3/service/{service}/action/{action}`` with ``format=1``
(docs/kaltura.md#api-requests). Typed helpers hang off the client: ``client.reports``, ``client.reach``,
``client.entries``, ``client.captions`` and ``client.report_jobs`` (Reports Microservice).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests

from kauto.kaltura.config import ClientSettings, PartnerCredentials
from kauto.kaltura.entries import CaptionsAPI, EntriesAPI
from kauto.kaltura.errors import (
    KalturaAPIError,
    KalturaInvalidSessionError,
    KalturaProtocolError,
    error_from_body,
    is_api_exception,
)
from kauto.kaltura.microservice import ReportsMicroservice
from kauto.kaltura.params import api_url, flatten
from kauto.kaltura.reach import ReachAPI
from kauto.kaltura.reports import ReportsAPI
from kauto.kaltura.sessions import SessionManager
from kauto.kaltura.transport import (
    ByteSink,
    Clock,
    HttpTransport,
    InvocationBudget,
    StreamResult,
    shared_http_session,
)
from kauto.kaltura.urls import DownloadPolicy, origin_of

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KalturaCall:
    """One call of a multirequest."""

    service: str
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """The result of one multirequest call: either ``result`` or ``error``."""

    result: Any = None
    error: KalturaAPIError | None = None

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.error is None

    def unwrap(self) -> Any:
        """The result, or raise the call's error."""
        if self.error is not None:
            raise self.error
        return self.result


class KalturaClient:
    """API client for one partner. Build it with :func:`get_client`; bind it to an invocation with
    :meth:`for_invocation` so retries respect the Lambda's remaining time and retry budget.
    """

    def __init__(
        self,
        credentials: PartnerCredentials,
        settings: ClientSettings | None = None,
        *,
        http: requests.Session | None = None,
        clock: Clock | None = None,
        rand16: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.credentials = credentials
        self.settings = settings or ClientSettings()
        self.transport = HttpTransport(self.settings, http=http, clock=clock, secrets=self._secrets)
        self._sessions = SessionManager(credentials, self.settings, self.transport, rand16=rand16)
        self.download_policy = DownloadPolicy(
            trusted_origins=frozenset({origin_of(credentials.service_url)}),
            allowed_hosts=frozenset(self.settings.download_hosts),
            allowed_ports=frozenset(self.settings.download_ports),
            max_redirects=self.settings.max_redirects,
        )
        self.budget = InvocationBudget()
        self._privileged: dict[str, KalturaClient] = {}
        self._attach_apis()

    def _attach_apis(self) -> None:
        self.reports = ReportsAPI(self)
        self.reach = ReachAPI(self)
        self.entries = EntriesAPI(self)
        self.captions = CaptionsAPI(self)
        self.report_jobs = ReportsMicroservice(self)

    def __repr__(self) -> str:
        creds = self.credentials
        return f"KalturaClient(partner_id={creds.partner_id}, service_url={creds.service_url!r})"

    def _secrets(self) -> tuple[str, ...]:
        return self._sessions.secrets()

    @property
    def partner_id(self) -> int:
        """The partner this client talks to."""
        return self.credentials.partner_id

    def for_invocation(self, budget: InvocationBudget) -> KalturaClient:
        """A view of this client whose calls share ``budget`` (time left + retry counter) for one invocation.

        The view shares the HTTP pool and the cached KS with this client.
        """
        view = copy.copy(self)
        view.budget = budget
        view._attach_apis()
        return view

    def with_privileges(self, extra: str) -> KalturaClient:
        """A client for the same partner whose KS also carries ``extra`` privileges (e.g. ``virtualeventid:42``,
        which the chat-and-collaboration reports need, docs/kaltura.md#reports-microservice). It keeps a KS of
        its own (cached like this one's) and shares the HTTP pool and this view's invocation budget."""
        privileges = ",".join(part for part in (self.credentials.session_privileges, extra) if part)
        base = self._privileged.get(privileges)
        if base is None:
            credentials = dataclasses.replace(self.credentials, session_privileges=privileges)
            base = KalturaClient(credentials, self.settings, http=self.transport.http, clock=self.transport.clock)
            self._privileged[privileges] = base
        return base.for_invocation(self.budget)

    # -- low-level calls (used by the typed APIs) -------------------------------------------------------------

    def with_session(self, operation: Callable[[str], T]) -> T:
        """Run ``operation(ks)``; after ``INVALID_KS`` refresh the KS once and run it again (never twice)."""
        ks = self._sessions.ks(self.budget)
        try:
            return operation(ks)
        except KalturaInvalidSessionError:
            self._sessions.invalidate(ks)
        return operation(self._sessions.ks(self.budget))

    def _form(self, ks: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [("format", "1"), ("ks", ks), *flatten(params)]

    def call(self, service: str, action: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call ``service.action`` and return the decoded JSON result; API errors are raised typed."""
        url = api_url(self.credentials.service_url, service, action)
        what = f"{service}.{action}"
        return self.with_session(
            lambda ks: self.transport.request_json(
                url, what=what, budget=self.budget, form=self._form(ks, params or {})
            )
        )

    def multirequest(self, calls: Sequence[KalturaCall]) -> list[CallOutcome]:
        """Send ``calls`` in one ``service/multirequest`` (docs/kaltura.md#multirequest); one failing call does not fail
        others.

        Per-call errors come back in their :class:`CallOutcome` and are not retried (other calls in the batch may
        have had side effects). The whole request is retried like any call and refreshed once on ``INVALID_KS``.
        """
        if not calls:
            return []
        url = api_url(self.credentials.service_url, "multirequest")

        def operation(ks: str) -> list[CallOutcome]:
            form = [("format", "1"), ("ks", ks)]
            for index, item in enumerate(calls, start=1):
                form += [(f"{index}:service", item.service), (f"{index}:action", item.action)]
                form += [(f"{index}:{name}", value) for name, value in flatten(item.params)]
            body = self.transport.request_json(url, what="multirequest", budget=self.budget, form=form)
            if not isinstance(body, list) or len(body) != len(calls):
                raise KalturaProtocolError(f"multirequest of {len(calls)} calls did not return as many results")
            outcomes = [
                CallOutcome(error=error_from_body(item, self._secrets()))
                if is_api_exception(item)
                else CallOutcome(result=item)
                for item in body
            ]
            # The common KS failed for every call, so nothing ran: safe to refresh and send the batch again.
            rejected = [o.error for o in outcomes if isinstance(o.error, KalturaInvalidSessionError)]
            if len(rejected) == len(outcomes):
                raise rejected[0]
            return outcomes

        return self.with_session(operation)

    def stream_action(
        self,
        service: str,
        action: str,
        params: Mapping[str, Any],
        sink: ByteSink,
        *,
        strip_bom: bool = False,
    ) -> StreamResult:
        """Call an action that answers with a raw file (e.g. ``report.getCsvFromStringParams``) and stream it."""
        url = api_url(self.credentials.service_url, service, action)
        return self.with_session(
            lambda ks: self.transport.stream_to_sink(
                "POST",
                url,
                sink,
                what=f"{service}.{action}",
                budget=self.budget,
                max_bytes=self.settings.max_download_bytes,
                strip_bom=strip_bom,
                form=self._form(ks, params),
            )
        )

    def download(self, url: str, sink: ByteSink, *, strip_bom: bool = False) -> StreamResult:
        """GET a Kaltura-issued download URL into ``sink`` under the download policy (SSRF guard, size cap)."""
        return self.transport.stream_to_sink(
            "GET",
            url,
            sink,
            what="report file download",
            budget=self.budget,
            max_bytes=self.settings.max_download_bytes,
            strip_bom=strip_bom,
            policy=self.download_policy,
        )


@functools.cache
def get_client(credentials: PartnerCredentials, settings: ClientSettings | None = None) -> KalturaClient:
    """The process-wide client for these credentials and settings (a rotated secret gets a new client)."""
    return KalturaClient(credentials, settings)


def clear_client_cache() -> None:
    """Drop every cached client and the shared HTTP session (tests; what a fresh Lambda instance would see)."""
    get_client.cache_clear()
    shared_http_session.cache_clear()
