"""Kaltura API v3 client (requests, no official SDK): sessions, retries, typed errors, reports, REACH, entries.

Typical use in a worker (``partner`` is the ``kauto.config.PartnerConfig`` from the partner secret)::

    credentials = PartnerCredentials(
        partner_id=partner.partner_id, service_url=partner.service_url, admin_secret=partner.admin_secret, ...
    )
    client = get_client(credentials).for_invocation(InvocationBudget.from_lambda_context(context))
    task = client.reach.order_caption(entry_id, catalog_item_id)
"""

from kauto.kaltura.client import CallOutcome, KalturaCall, KalturaClient, clear_client_cache, get_client
from kauto.kaltura.config import AppToken, ClientSettings, PartnerCredentials, SessionMode
from kauto.kaltura.errors import (
    Disposition,
    KalturaAlreadyDoneError,
    KalturaAPIError,
    KalturaAppTokenError,
    KalturaConfigurationError,
    KalturaCreditError,
    KalturaDeadlineError,
    KalturaDownloadTooLargeError,
    KalturaError,
    KalturaInvalidRequestError,
    KalturaInvalidSessionError,
    KalturaNotFoundError,
    KalturaNotReadyError,
    KalturaPermissionError,
    KalturaProtocolError,
    KalturaQueryTimeoutError,
    KalturaRateLimitedError,
    KalturaRejectedError,
    KalturaResultLimitError,
    KalturaServerError,
    KalturaStreamInterruptedError,
    KalturaTransportError,
    KalturaURLRefusedError,
    ReportJobFailedError,
    ReportJobPendingError,
)
from kauto.kaltura.microservice import JobProgress, ReportJobHandle, ReportJobState, ReportJobStatus
from kauto.kaltura.reports import ReportFilter, ReportGraph, ReportInterval, ReportTable
from kauto.kaltura.transport import ByteSink, Clock, InvocationBudget, StreamResult
from kauto.kaltura.types import (
    CaptionAsset,
    CatalogItem,
    CatalogItemStatus,
    Entry,
    EntryStatus,
    ServiceFeature,
    ServiceType,
    VendorTask,
    VendorTaskStatus,
)

__all__ = [
    "AppToken",
    "ByteSink",
    "CallOutcome",
    "CaptionAsset",
    "CatalogItem",
    "CatalogItemStatus",
    "ClientSettings",
    "Clock",
    "Disposition",
    "Entry",
    "EntryStatus",
    "InvocationBudget",
    "JobProgress",
    "KalturaAPIError",
    "KalturaAlreadyDoneError",
    "KalturaAppTokenError",
    "KalturaCall",
    "KalturaClient",
    "KalturaConfigurationError",
    "KalturaCreditError",
    "KalturaDeadlineError",
    "KalturaDownloadTooLargeError",
    "KalturaError",
    "KalturaInvalidRequestError",
    "KalturaInvalidSessionError",
    "KalturaNotFoundError",
    "KalturaNotReadyError",
    "KalturaPermissionError",
    "KalturaProtocolError",
    "KalturaQueryTimeoutError",
    "KalturaRateLimitedError",
    "KalturaRejectedError",
    "KalturaResultLimitError",
    "KalturaServerError",
    "KalturaStreamInterruptedError",
    "KalturaTransportError",
    "KalturaURLRefusedError",
    "PartnerCredentials",
    "ReportFilter",
    "ReportGraph",
    "ReportInterval",
    "ReportJobFailedError",
    "ReportJobHandle",
    "ReportJobPendingError",
    "ReportJobState",
    "ReportJobStatus",
    "ReportTable",
    "ServiceFeature",
    "ServiceType",
    "SessionMode",
    "StreamResult",
    "VendorTask",
    "VendorTaskStatus",
    "clear_client_cache",
    "get_client",
]
