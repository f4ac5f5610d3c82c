"""``KalturaSimulator``: the public face of the simulator (start/stop, state helpers, clock, faults, dispatcher)."""

from __future__ import annotations

import shutil
import ssl
import tempfile
import threading
from collections.abc import Collection, Mapping, Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from .calllog import CallLog, CallRecord
from .clock import DEFAULT_START_TIME, SimClock
from .core import SimulatorCore
from .dispatcher import BodyFormat, Dispatcher, Subscription
from .entries import add_entry, update_entry
from .events import ALL_KINDS
from .faults import Faults
from .ks import SESSION_TYPE_ADMIN, KsInfo
from .microservice import MicroserviceSettings
from .report_data import table_rows
from .room_reports import add_room_session
from .server import SimulatorApp, make_server
from .sessions import authenticate, issue_ks
from .state import (
    APP_TOKEN_ACTIVE,
    AppToken,
    Attendee,
    Breakout,
    CaptionAsset,
    CatalogItem,
    Entry,
    Partner,
    ReachProfile,
    RoomSession,
    TaskBehaviour,
    VendorTask,
)
from .tls import create_tls_files

LOOPBACK = "127.0.0.1"


class KalturaSimulator:
    """A loopback Kaltura (API v3, reports, REACH, Reports Microservice, webhook dispatcher) for tests and the demo.

    Everything is deterministic for a given ``seed`` and ``start_time``: ids, KS random blocks, report data and
    fault decisions. Time only moves through :attr:`clock` (``sim.clock.advance(seconds)``).

    ``tls=True`` also serves https with a certificate from a CA generated at start (trust :attr:`ca_path`).
    ``public_url`` is the base used in URLs the API returns (report CSV URLs, entry URLs); it defaults to the https
    base when TLS is on, else the http base.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        start_time: int = DEFAULT_START_TIME,
        port: int = 0,
        tls: bool = True,
        tls_port: int = 0,
        public_url: str | None = None,
        retry_interval: int = 60,
        max_attempts: int = 3,
        dispatch_timeout: float = 5.0,
    ) -> None:
        self.seed = seed
        self.clock = SimClock(start_time)
        self.core = SimulatorCore(seed=seed, clock=self.clock, cdn_url=lambda: self.public_url)
        self.faults = Faults(seed)
        self.dispatcher = Dispatcher(
            self.core, max_attempts=max_attempts, retry_interval=retry_interval, timeout=dispatch_timeout
        )
        self.core.add_listener(self.dispatcher.on_event)
        self.clock.add_listener(self._on_tick)
        self._calls = CallLog()
        self._port = port
        self._tls_enabled = tls
        self._tls_port = tls_port
        self._public_url = public_url.rstrip("/") if public_url else None
        self._stopping = threading.Event()
        self._servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
        self._http: ThreadingHTTPServer | None = None
        self._https: ThreadingHTTPServer | None = None
        self._tls_dir: Path | None = None
        self.ca_path: Path | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> KalturaSimulator:
        """Bind 127.0.0.1 (port 0 = any free port) and serve in background threads."""
        if self._servers:
            return self
        app = SimulatorApp(self.core, self.faults, self._calls, self._stopping)
        self._http = make_server(LOOPBACK, self._port, app, None)
        self._serve(self._http, "http")
        if self._tls_enabled:
            self._tls_dir = Path(tempfile.mkdtemp(prefix="kaltura-sim-tls-"))
            files = create_tls_files(self._tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(files.cert_path, files.key_path)
            self.ca_path = files.ca_path
            self._https = make_server(LOOPBACK, self._tls_port, app, context)
            self._serve(self._https, "https")
        return self

    def _serve(self, server: ThreadingHTTPServer, name: str) -> None:
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"kaltura-sim-{name}", daemon=True
        )
        thread.start()
        self._servers.append((server, thread))

    def stop(self) -> None:
        """Stop serving, interrupt injected latencies and remove the generated certificates."""
        self._stopping.set()
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        self._servers.clear()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    def __enter__(self) -> KalturaSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # ---- addresses -----------------------------------------------------------------------------------------------

    @staticmethod
    def _base(server: ThreadingHTTPServer | None, scheme: str) -> str:
        if server is None:
            raise RuntimeError(f"the simulator is not serving {scheme}; call start() (with tls=True for https)")
        return f"{scheme}://{LOOPBACK}:{server.server_address[1]}"

    @property
    def url(self) -> str:
        """http base URL (the Kaltura service URL: append ``/api_v3/...``)."""
        return self._base(self._http, "http")

    @property
    def https_url(self) -> str:
        """https base URL (only with ``tls=True``)."""
        return self._base(self._https, "https")

    @property
    def public_url(self) -> str:
        """Base URL put into returned URLs (report CSV links, entry URLs)."""
        if self._public_url:
            return self._public_url
        return self.https_url if self._https is not None else self.url

    @public_url.setter
    def public_url(self, url: str | None) -> None:
        """Point returned URLs elsewhere (a CDN host name, another server); None restores the default."""
        self._public_url = url.rstrip("/") if url else None

    @property
    def reports_url(self) -> str:
        """Base URL of the Reports Microservice (same server; https when available)."""
        return self.public_url

    # ---- observations ------------------------------------------------------------------------------------------

    @property
    def calls(self) -> list[CallRecord]:
        """Every API call served so far (without secrets), oldest first."""
        return self._calls.snapshot()

    def calls_to(self, service: str, action: str) -> list[CallRecord]:
        """Calls of one ``service.action`` (case-insensitive)."""
        return [
            call
            for call in self._calls.snapshot()
            if call.service.lower() == service.lower() and call.action.lower() == action.lower()
        ]

    def clear_calls(self) -> None:
        """Forget the call log."""
        self._calls.clear()

    # ---- partners, sessions --------------------------------------------------------------------------------------

    def add_partner(
        self,
        partner_id: int,
        admin_secret: str,
        *,
        additional_admin_secrets: Sequence[str] = (),
        user_secret: str | None = None,
        name: str | None = None,
        ks_version: int = 2,
        reach_enabled: bool = True,
    ) -> Partner:
        """Add a partner; ``admin_secret`` signs KSs and webhooks, additional secrets are also accepted in KSs."""
        partner = Partner(
            partner_id=partner_id,
            admin_secrets=[admin_secret, *additional_admin_secrets],
            user_secret=user_secret or f"user-{admin_secret}",
            name=name or f"Partner {partner_id}",
            ks_version=ks_version,
            reach_enabled=reach_enabled,
        )
        with self.core.state.lock:
            self.core.state.partners[partner_id] = partner
        return partner

    def add_app_token(
        self,
        partner_id: int,
        token: str,
        *,
        token_id: str | None = None,
        hash_type: str = "SHA256",
        session_type: int | None = SESSION_TYPE_ADMIN,
        session_user_id: str | None = None,
        session_privileges: str | None = None,
        session_duration: int = 86400,
        expiry: int | None = None,
        status: int = APP_TOKEN_ACTIVE,
    ) -> AppToken:
        """Add an app token (docs/kaltura.md#app-tokens); ``status`` 1 is ACTIVE, ``expiry`` is absolute simulator
        time."""
        with self.core.state.lock:
            partner = self.core.state.partners[partner_id]
            app_token = AppToken(
                id=token_id or self.core.state.new_object_id().replace("1_", "0_", 1),
                partner_id=partner_id,
                token=token,
                hash_type=hash_type,
                status=status,
                session_type=session_type,
                session_user_id=session_user_id,
                session_privileges=session_privileges,
                session_duration=session_duration,
                expiry=expiry,
            )
            partner.app_tokens[app_token.id] = app_token
        return app_token

    def ks(
        self,
        partner_id: int,
        *,
        session_type: int = SESSION_TYPE_ADMIN,
        user_id: str = "",
        expiry_seconds: int = 86400,
        privileges: str = "",
    ) -> str:
        """Mint a KS as ``session.start`` would (relative expiry on the simulator clock)."""
        partner = self.core.state.partners[partner_id]
        return issue_ks(
            self.core,
            partner,
            session_type=session_type,
            user_id=user_id,
            expiry_seconds=expiry_seconds,
            privileges=privileges,
        )

    def check_ks(self, ks: str) -> KsInfo:
        """Decode and validate ``ks`` exactly as the API does (raises ``ApiError`` INVALID_KS)."""
        return authenticate(self.core, ks)

    # ---- entries -----------------------------------------------------------------------------------------------

    def add_entry(self, partner_id: int, **fields: Any) -> Entry:
        """Add a media entry (or a room with ``entry_type="room.room"``); see ``entries.add_entry`` for the fields.

        Common ones: ``name``, ``status`` (2 READY), ``duration`` (s), ``tags``, ``admin_tags``, ``categories_ids``,
        ``created_at``, ``replaced_entry_id``, ``ready_in`` (seconds until it becomes READY on the clock).
        """
        return add_entry(self.core, partner_id, **fields)

    def update_entry(self, entry_id: str, **changes: Any) -> Entry:
        """Change entry fields; a status change to READY raises the entry-ready event (subscriptions deliver it)."""
        self.core.emit(update_entry(self.core, entry_id, changes))
        return self.core.state.entries[entry_id]

    def set_entry_status(self, entry_id: str, status: int | str) -> Entry:
        """Shortcut for ``update_entry(entry_id, status=status)``."""
        return self.update_entry(entry_id, status=status)

    def entry(self, entry_id: str) -> Entry:
        """An entry by id."""
        return self.core.state.entries[entry_id]

    def caption_assets(self, entry_id: str) -> list[CaptionAsset]:
        """Caption assets of an entry."""
        with self.core.state.lock:
            return [asset for asset in self.core.state.caption_assets.values() if asset.entry_id == entry_id]

    # ---- REACH ---------------------------------------------------------------------------------------------------

    def add_catalog_item(
        self,
        partner_id: int,
        *,
        name: str = "Machine captions English",
        item_id: int | None = None,
        service_feature: int = 1,
        service_type: int = 2,
        turn_around_time: int = -1,
        price_per_unit: float = 1.0,
        source_language: str = "English",
        target_language: str | None = None,
        output_format: int = 1,
        allow_resubmission: bool = False,
        behaviour: TaskBehaviour | None = None,
    ) -> CatalogItem:
        """Add a vendor catalog item enabled for ``partner_id`` (captions unless ``target_language`` is set).

        ``behaviour`` sets how its tasks progress (time PENDING, time PROCESSING, READY or ERROR).
        """
        with self.core.state.lock:
            item = CatalogItem(
                id=item_id or self.core.state.next_number("catalog"),
                name=name,
                system_name=name.upper().replace(" ", "_"),
                service_feature=service_feature,
                service_type=service_type,
                turn_around_time=turn_around_time,
                price_per_unit=price_per_unit,
                source_language=source_language,
                target_language=target_language,
                output_format=output_format,
                allow_resubmission=allow_resubmission,
                created_at=self.clock.now(),
                enabled_partners={partner_id},
                behaviour=behaviour or TaskBehaviour(),
            )
            self.core.state.catalog_items[item.id] = item
        return item

    def enable_catalog_item(self, item_id: int, partner_id: int) -> None:
        """Enable an existing catalog item for another partner."""
        with self.core.state.lock:
            self.core.state.catalog_items[item_id].enabled_partners.add(partner_id)

    def add_reach_profile(
        self,
        partner_id: int,
        *,
        credit: float | None = 100.0,
        overage_credit: float = 0.0,
        credit_expires_at: int | None = None,
        name: str = "Default REACH profile",
        default_for: Collection[int] = (),
    ) -> ReachProfile:
        """Add a REACH profile; ``credit=None`` is unlimited; ``default_for`` makes it the default of those items."""
        with self.core.state.lock:
            profile = ReachProfile(
                id=self.core.state.next_number("profile"),
                partner_id=partner_id,
                name=name,
                credit=credit,
                overage_credit=overage_credit,
                credit_expires_at=credit_expires_at,
                created_at=self.clock.now(),
            )
            self.core.state.reach_profiles[profile.id] = profile
            for item_id in default_for:
                self.core.state.catalog_items[item_id].default_reach_profile_ids[partner_id] = profile.id
        return profile

    def set_task_behaviour(self, entry_id: str, behaviour: TaskBehaviour) -> None:
        """Override how tasks ordered for ``entry_id`` progress (e.g. ``TaskBehaviour(result="error")``)."""
        with self.core.state.lock:
            self.core.state.entry_behaviours[entry_id] = behaviour

    def task(self, task_id: int) -> VendorTask:
        """A vendor task by id."""
        return self.core.state.tasks[task_id]

    def tasks(self, partner_id: int | None = None) -> list[VendorTask]:
        """Vendor tasks (of one partner), in creation order."""
        with self.core.state.lock:
            return [t for t in self.core.state.tasks.values() if partner_id is None or t.partner_id == partner_id]

    # ---- rooms and reports ---------------------------------------------------------------------------------------

    def add_room_session(
        self,
        partner_id: int,
        *,
        room_entry_id: str | None = None,
        room_name: str = "Team room",
        name: str = "Room session",
        start: int | None = None,
        end: int | None = None,
        duration: int = 3600,
        host_user_id: str = "host@example.com",
        attendees: int | Sequence[Attendee] = 5,
        breakouts: int | Sequence[Breakout] = 0,
        virtual_event_id: str | None = None,
        chat_messages: int = 0,
        polls: int = 0,
        announce: bool = True,
    ) -> RoomSession:
        """Add a Kaltura Room session (report 6000/6001/6002 rows; a session-ended event once it has ended).

        ``chat_messages``/``polls`` give it group chat, moderator threads and polls for the Reports Microservice's
        chat-and-collaboration reports (:mod:`.collab_reports`).

        Defaults to a one-hour session ending now; ``attendees``/``breakouts`` as counts generate deterministic
        people (including awkward names) and breakout rooms.
        """
        session = add_room_session(
            self.core,
            partner_id,
            room_entry_id=room_entry_id,
            room_name=room_name,
            name=name,
            start=start,
            end=end,
            duration=duration,
            host_user_id=host_user_id,
            attendees=attendees,
            breakouts=breakouts,
            virtual_event_id=virtual_event_id,
            chat_messages=chat_messages,
            polls=polls,
            announce=announce,
        )
        self.core.emit(self.core.settle(self.clock.now()))
        return session

    def configure_report(
        self,
        report_type: int,
        *,
        rows_per_day: int | None = None,
        rows_per_weekday: tuple[int, ...] | None = None,
        total_rows: int | None = None,
    ) -> None:
        """Size of a getTable report type, by exactly one of: rows per day, rows per weekday (Monday first) or a
        fixed total (aggregated reports only). Per-moment reports (``VIEWER_SESSIONS``) place that many rows on
        every UTC day; aggregated reports list that many entities per local day the window touches.
        """
        self.core.reports.configure(
            report_type, rows_per_day=rows_per_day, rows_per_weekday=rows_per_weekday, total_rows=total_rows
        )

    def report_rows(
        self,
        partner_id: int,
        report_type: int,
        *,
        from_date: int,
        to_date: int,
        time_zone_offset: int = 0,
        filters: Mapping[str, Any] | None = None,
        object_ids: str | None = None,
        delimiter: str = ",",
        order: str | None = None,
    ) -> tuple[list[str], list[list[str]]]:
        """Header and every row ``report.getTable`` pages through for this query, straight from the generator (no
        HTTP, no paging, no 12,000-row limit): the reference a paged or split fetch must equal.

        ``filters`` are further ``reportInputFilter`` fields (e.g. ``{"entryIdIn": "1_a|1_b"}``), as sent.
        """
        report_filter = {
            **(filters or {}),
            "fromDate": str(from_date),
            "toDate": str(to_date),
            "timeZoneOffset": str(time_zone_offset),
        }
        return table_rows(
            self.core,
            partner_id,
            report_type,
            report_filter,
            delimiter=delimiter,
            object_ids=object_ids,
            order=order,
        )

    def configure_room_report(self, report_id: int, *, rows: int | None = None, body_bytes: int | None = None) -> None:
        """Pad room report 6000/6001/6002 with synthetic rows: a count, or until the CSV body has ``body_bytes``."""
        self.core.room_reports.configure(report_id, rows=rows, body_bytes=body_bytes)

    @property
    def microservice(self) -> MicroserviceSettings:
        """Reports Microservice knobs: ``pending_seconds``, ``in_progress_seconds``, ``rows``, ``failures``."""
        return self.core.microservice

    # ---- notifications -------------------------------------------------------------------------------------------

    def subscribe(
        self,
        url: str,
        *,
        kinds: Collection[str] = ALL_KINDS,
        partner_id: int | None = None,
        body_format: BodyFormat | str = BodyFormat.OBJECT_JSON,
        hash_algorithm: str = "sha1",
        task_statuses: Collection[int] | None = None,
    ) -> Subscription:
        """Have the dispatcher POST future entry-ready / task-status / session-ended events to ``url``."""
        return self.dispatcher.subscribe(
            url,
            kinds=kinds,
            partner_id=partner_id,
            body_format=body_format,
            hash_algorithm=hash_algorithm,
            task_statuses=task_statuses,
        )

    def _on_tick(self, now: int) -> None:
        self.core.emit(self.core.settle(now))
        self.dispatcher.run_due(now)
