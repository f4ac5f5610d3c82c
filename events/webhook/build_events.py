"""Build the webhook's sample API Gateway events and the normalized event each must produce.

Run ``.venv/bin/python events/webhook/build_events.py`` after changing this file; the generated
``<name>.event.json`` (HTTP API payload 2.0, for ``sam local invoke -e``, the tests and the demo) and
``<name>.expected.json`` (HTTP status, outcome and the exact SQS message body) are committed, and a test checks
that they are up to date and that the handler produces exactly the expected events.

Bodies follow the wire formats in docs/kaltura.md#webhook-bodies and #notification-envelope (compact PHP-style JSON with
``\\/``, legacy ``data=`` + url-encoded JSON labelled ``application/json``, ``data=<notification>`` XML, DataFields
forms, base64 bodies from API Gateway). They are signed as Kaltura does (docs/kaltura.md#signature) with the FAKE admin
secret below for partner 1234567. The expected events are written out by hand, independently of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus
from xml.sax.saxutils import escape

FAKE_ADMIN_SECRET = "0123456789abcdef0123456789abcdef"  # noqa: S105 - the fake secret of docs/kaltura.md#signature
PARTNER_ID = 1234567
ROUTE_KEY = "POST /kaltura/notifications/{partnerId}"
# KCurlWrapper's constant User-Agent (docs/kaltura.md#headers).
KALTURA_USER_AGENT = "Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.9.0.6) Gecko/2009011913 Firefox/3.0.6"
DEFAULT_TIME_EPOCH_MS = 1767254714000
OUTPUT_DIR = Path(__file__).resolve().parent


def php_json(value: Any) -> str:
    """JSON as PHP ``json_encode`` writes it: compact, ASCII only, ``/`` escaped as ``\\/``
    (docs/kaltura.md#notification-envelope)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")


def php_urlencode(text: str) -> str:
    """PHP ``urlencode``: everything but ``[A-Za-z0-9_.-]`` percent-encoded, spaces as ``+``."""
    return quote_plus(text, safe="").replace("~", "%7E")


def http_build_query(parameters: dict[str, str]) -> str:
    """PHP ``http_build_query`` of a flat dict (DataFields bodies)."""
    return "&".join(f"{php_urlencode(key)}={php_urlencode(value)}" for key, value in parameters.items())


def kaltura_xml(envelope: dict[str, Any]) -> str:
    """ObjectData XML body: ``data=<notification>`` + the XML-serialised envelope + ``</notification>``."""
    return f"data=<notification>{_xml_fields(envelope)}</notification>"


def _xml_fields(value: dict[str, Any]) -> str:
    return "".join(f"<{name}>{_xml_value(item)}</{name}>" for name, item in value.items())


def _xml_value(value: Any) -> str:
    if isinstance(value, dict):
        return _xml_fields(value)
    if isinstance(value, list):
        return "".join(f"<item>{_xml_value(item)}</item>" for item in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return escape(str(value))


def sign(body: bytes, secret: str = FAKE_ADMIN_SECRET, algorithm: str = "sha1") -> str:
    """Kaltura's signature: lowercase hex(HASH(admin secret + raw body)) (docs/kaltura.md#signature)."""
    return hashlib.new(algorithm, secret.encode() + body).hexdigest()


def http_api_event(
    body: bytes,
    *,
    partner_id: str | None = str(PARTNER_ID),
    content_type: str | None = "application/json",
    algorithm: str = "sha1",
    secret: str = FAKE_ADMIN_SECRET,
    algorithm_header: bool = True,
    base64_encoded: bool = False,
    headers: dict[str, str] | None = None,
    time_epoch_ms: int = DEFAULT_TIME_EPOCH_MS,
    request_id: str = "Jx9kTgS0IAMEVJw=",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event for a signed Kaltura POST to the webhook route.

    ``headers`` are added last and may override (e.g. a wrong signature); header names are lower-case, as API
    Gateway delivers them.
    """
    all_headers = {
        "accept": "*/*",
        "content-length": str(len(body)),
        "host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "user-agent": KALTURA_USER_AGENT,
        "x-amzn-trace-id": "Root=1-6956283a-0123456789abcdef01234567",
        "x-forwarded-for": "198.51.100.23",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        "x-kaltura-signature": sign(body, secret, algorithm),
    }
    if algorithm_header:
        all_headers["x-kaltura-hash-algo"] = algorithm
    if content_type is not None:
        all_headers["content-type"] = content_type
    all_headers.update(headers or {})
    path = f"/kaltura/notifications/{partner_id}"
    return {
        "version": "2.0",
        "routeKey": ROUTE_KEY,
        "rawPath": path,
        "rawQueryString": "",
        "headers": dict(sorted(all_headers.items())),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.23",
                "userAgent": KALTURA_USER_AGENT,
            },
            "requestId": request_id,
            "routeKey": ROUTE_KEY,
            "stage": "$default",
            "time": "01/Jan/2026:08:05:14 +0000",
            "timeEpoch": time_epoch_ms,
        },
        "pathParameters": {} if partner_id is None else {"partnerId": partner_id},
        "body": base64.b64encode(body).decode("ascii") if base64_encoded else body.decode("utf-8"),
        "isBase64Encoded": base64_encoded,
    }


def envelope(obj: dict[str, Any], **notification: Any) -> dict[str, Any]:
    """A ``KalturaHttpNotification`` envelope around ``obj`` (field order as Kaltura emits it,
    docs/kaltura.md#notification-envelope)."""
    return {"object": obj, **notification, "objectType": "KalturaHttpNotification"}


# ------------------------------------------------------------------------------------------------ sample objects
MEDIA_ENTRY: dict[str, Any] = {
    "mediaType": 1,
    "conversionQuality": 18921322,
    "sourceType": "1",
    "dataUrl": "https://cdnapisec.kaltura.com/p/1234567/sp/123456700/playManifest/entryId/1_x4b9c2kq/format/url/protocol/https",
    "flavorParamsIds": "0,487041,487051,487061",
    "plays": 0,
    "views": 0,
    "width": 1280,
    "height": 720,
    "duration": 125,
    "msDuration": 125400,
    "durationType": "short",
    "id": "1_x4b9c2kq",
    "name": "Quarterly all-hands recording",
    "description": "",
    "partnerId": PARTNER_ID,
    "userId": "jane.doe@example.com",
    "creatorId": "jane.doe@example.com",
    "tags": "all-hands,quarterly",
    "adminTags": "captions-auto",
    "categories": "Company>Town halls",
    "categoriesIds": "301",
    "status": 2,
    "moderationStatus": 6,
    "moderationCount": 0,
    "type": 1,
    "createdAt": 1767254400,
    "updatedAt": 1767254712,
    "rank": 0,
    "replacementStatus": 0,
    "conversionProfileId": 18921322,
    "rootEntryId": "1_x4b9c2kq",
    "operationAttributes": [],
    "displayInSearch": 1,
    "blockAutoTranscript": False,
    "objectType": "KalturaMediaEntry",
}
ENTRY_FIELDS: dict[str, Any] = {
    "id": "1_x4b9c2kq",
    "name": "Quarterly all-hands recording",
    "type": 1,
    "mediaType": 1,
    "status": 2,
    "duration": 125,
    "msDuration": 125400,
    "createdAt": 1767254400,
    "updatedAt": 1767254712,
    "tags": "all-hands,quarterly",
    "adminTags": "captions-auto",
    "categories": "Company>Town halls",
    "categoriesIds": "301",
    "replacementStatus": 0,
    "sourceType": "1",
    "rootEntryId": "1_x4b9c2kq",
}

LEGACY_ENTRY: dict[str, Any] = {
    **MEDIA_ENTRY,
    "id": "1_q8w7e6r5",
    "name": "Onboarding: week 1 / intro & tools",
    "tags": "",
    "adminTags": "",
    "categories": "",
    "categoriesIds": "",
    "duration": 1802,
    "msDuration": 1802350,
    "createdAt": 1767250000,
    "updatedAt": 1767253990,
    "rootEntryId": "1_q8w7e6r5",
}

VENDOR_TASK_READY: dict[str, Any] = {
    "id": 98765432,
    "partnerId": PARTNER_ID,
    "vendorPartnerId": 3456789,
    "createdAt": 1767254800,
    "updatedAt": 1767256920,
    "queueTime": 1767254805,
    "finishTime": 1767256920,
    "entryId": "1_x4b9c2kq",
    "status": 2,
    "reachProfileId": 112233,
    "catalogItemId": 445566,
    "price": 2.09,
    "userId": "jane.doe@example.com",
    "entryObjectType": 1,
    # A KS in real payloads (docs/kaltura.md#notification-envelope): must never reach the queue or the logs.
    "accessKey": "djJ8MTIzNDU2N3xGQUtFLUFDQ0VTUy1LRVktRk9SLVRIRS1TQU1QTEUtRVZFTlQ=",
    "version": 0,
    "outputObjectId": "1_cap9zq1e",
    "creationMode": 1,
    "expectedFinishTime": 1767341200,
    "serviceType": 2,
    "serviceFeature": 1,
    "turnAroundTime": -1,
    "objectType": "KalturaEntryVendorTask",
}
VENDOR_TASK_READY_FIELDS: dict[str, Any] = {
    "id": 98765432,
    "entryId": "1_x4b9c2kq",
    "status": 2,
    "catalogItemId": 445566,
    "reachProfileId": 112233,
    "serviceType": 2,
    "serviceFeature": 1,
    "turnAroundTime": -1,
    "outputObjectId": "1_cap9zq1e",
    "createdAt": 1767254800,
    "updatedAt": 1767256920,
    "queueTime": 1767254805,
    "finishTime": 1767256920,
    "expectedFinishTime": 1767341200,
    "version": 0,
    "price": 2.09,
}

VENDOR_TASK_ERROR: dict[str, Any] = {
    **{key: value for key, value in VENDOR_TASK_READY.items() if key not in ("outputObjectId", "objectType")},
    "id": 98765433,
    "status": 6,
    "updatedAt": 1767255100,
    "finishTime": 1767255100,
    "errDescription": "Entry duration is below the minimum for this service",
    "price": 0,
    "objectType": "KalturaEntryVendorTask",
}
VENDOR_TASK_ERROR_FIELDS: dict[str, Any] = {
    "id": 98765433,
    "entryId": "1_x4b9c2kq",
    "status": 6,
    "catalogItemId": 445566,
    "reachProfileId": 112233,
    "serviceType": 2,
    "serviceFeature": 1,
    "turnAroundTime": -1,
    "errDescription": "Entry duration is below the minimum for this service",
    "createdAt": 1767254800,
    "updatedAt": 1767255100,
    "queueTime": 1767254805,
    "finishTime": 1767255100,
    "expectedFinishTime": 1767341200,
    "version": 0,
    "price": 0,
}

SESSION_CUE_POINT: dict[str, Any] = {
    "sessionOwner": "jane.doe@example.com",
    "name": "Weekly product sync",
    "endTime": 3605000,
    "duration": 3605000,
    "id": "1_s3ss10n7",
    "cuePointType": "sessionCuePoint.Session",
    "status": 1,
    "entryId": "1_r00m4x2p",
    "partnerId": PARTNER_ID,
    "createdAt": 1767258000,
    "updatedAt": 1767261610,
    "tags": "",
    "startTime": 0,
    "userId": "jane.doe@example.com",
    "isMomentary": False,
    "objectType": "KalturaSessionCuePoint",
}
SESSION_CUE_POINT_FIELDS: dict[str, Any] = {
    "id": "1_s3ss10n7",
    "entryId": "1_r00m4x2p",
    "cuePointType": "sessionCuePoint.Session",
    "name": "Weekly product sync",
    "status": 1,
    "startTime": 0,
    "endTime": 3605000,
    "duration": 3605000,
    "createdAt": 1767258000,
    "updatedAt": 1767261610,
}

ENTRY_STATUS_EQUALS = {
    "templateId": 26970222,
    "templateName": "Entry Status Equals",
    "templateSystemName": "HTTP_ENTRY_STATUS_EQUALS",
    "eventType": 3,
}
VENDOR_TASK_TEMPLATE = {
    "templateId": 26970231,
    "templateName": "Task Finished Processing",
    "templateSystemName": "Http_Entry_Vendor_Task_Finished_Processing",
    "eventType": 3,
}


def _expected_event(**event: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {"partner_id": PARTNER_ID, "received_at": DEFAULT_TIME_EPOCH_MS // 1000}
    return {**defaults, **event}


@dataclass(frozen=True)
class Sample:
    """One sample delivery and what the webhook must do with it."""

    name: str
    description: str
    event: dict[str, Any]
    status_code: int
    outcome: str
    expected_event: dict[str, Any] | None


def samples() -> list[Sample]:
    """All sample deliveries, one per body variant Kaltura sends."""
    entry_json = php_json(
        envelope(MEDIA_ENTRY, eventObjectType=1, eventNotificationJobId=33578094492, **ENTRY_STATUS_EQUALS)
    ).encode()
    legacy_json = php_json(
        envelope(LEGACY_ENTRY, eventObjectType=1, eventNotificationJobId=33578094188, **ENTRY_STATUS_EQUALS)
    )
    legacy_body = f"data={php_urlencode(legacy_json)}".encode()
    task_xml = kaltura_xml(
        envelope(VENDOR_TASK_READY, eventObjectType=42, eventNotificationJobId=33578101877, **VENDOR_TASK_TEMPLATE)
    ).encode()
    data_fields = http_build_query(
        {
            "entry_id": "1_x4b9c2kq",
            "entry_name": "Quarterly all-hands recording",
            "entry_status": "2",
            "entry_reference_id": "",
            "trigger_status": "2",
        }
    ).encode()
    task_error = php_json(
        envelope(
            VENDOR_TASK_ERROR,
            eventObjectType=42,
            eventNotificationJobId=33578101902,
            templateId=26970240,
            templateName="Task Status Changed",
            templateSystemName="Custom_Entry_Vendor_Task_Status_Changed",
            eventType=3,
        )
    ).encode()
    session = php_json(
        envelope(
            SESSION_CUE_POINT,
            eventObjectType="cuePointEventNotifications.CuePoint",
            eventNotificationJobId=33578120455,
            templateId=26970255,
            templateName="Session Cue Point Changed",
            templateSystemName="Custom_Session_Cue_Point_Changed",
            eventType=3,
        )
    ).encode()
    data_fields_key = (
        "1234567:sha256:"
        + hashlib.sha256(
            json.dumps(
                {
                    "entry_id": "1_x4b9c2kq",
                    "entry_name": "Quarterly all-hands recording",
                    "entry_reference_id": "",
                    "entry_status": "2",
                    "trigger_status": "2",
                },
                sort_keys=True,
                separators=(",", ":"),
            ).encode()
        ).hexdigest()
    )
    return [
        Sample(
            name="entry_ready_object_json",
            description="ObjectData JSON (raw body), KalturaMediaEntry READY, sha256 with X-KALTURA-HASH-ALGO",
            event=http_api_event(entry_json, algorithm="sha256"),
            status_code=200,
            outcome="accepted",
            expected_event=_expected_event(
                kind="entry_ready",
                dedupe_key="1234567:job:33578094492",
                job_id=33578094492,
                template_id=26970222,
                template_system_name="HTTP_ENTRY_STATUS_EQUALS",
                event_type=3,
                event_object_type=1,
                object_type="KalturaMediaEntry",
                object_id="1_x4b9c2kq",
                entry_id="1_x4b9c2kq",
                status="2",
                fields=ENTRY_FIELDS,
                body_format="object_json",
            ),
        ),
        Sample(
            name="entry_ready_legacy_form_json",
            description="Legacy ObjectData template: data= + url-encoded JSON, still labelled application/json, sha1",
            event=http_api_event(legacy_body, algorithm="sha1"),
            status_code=200,
            outcome="accepted",
            expected_event=_expected_event(
                kind="entry_ready",
                dedupe_key="1234567:job:33578094188",
                job_id=33578094188,
                template_id=26970222,
                template_system_name="HTTP_ENTRY_STATUS_EQUALS",
                event_type=3,
                event_object_type=1,
                object_type="KalturaMediaEntry",
                object_id="1_q8w7e6r5",
                entry_id="1_q8w7e6r5",
                status="2",
                fields={
                    **ENTRY_FIELDS,
                    "id": "1_q8w7e6r5",
                    "name": "Onboarding: week 1 / intro & tools",
                    "tags": "",
                    "adminTags": "",
                    "categories": "",
                    "categoriesIds": "",
                    "duration": 1802,
                    "msDuration": 1802350,
                    "createdAt": 1767250000,
                    "updatedAt": 1767253990,
                    "rootEntryId": "1_q8w7e6r5",
                },
                body_format="object_json_form",
            ),
        ),
        Sample(
            name="vendor_task_ready_object_xml",
            description="ObjectData XML (data=<notification>...), REACH task READY, sha512; accessKey dropped",
            event=http_api_event(task_xml, content_type="application/xml", algorithm="sha512"),
            status_code=200,
            outcome="accepted",
            expected_event=_expected_event(
                kind="vendor_task_status",
                dedupe_key="1234567:job:33578101877",
                job_id=33578101877,
                template_id=26970231,
                template_system_name="Http_Entry_Vendor_Task_Finished_Processing",
                event_type=3,
                event_object_type=42,
                object_type="KalturaEntryVendorTask",
                object_id="98765432",
                entry_id="1_x4b9c2kq",
                status="2",
                fields=VENDOR_TASK_READY_FIELDS,
                body_format="object_xml",
            ),
        ),
        Sample(
            name="entry_ready_data_fields",
            description="DataFields form body (no job id: deduped on content), sha1 without X-KALTURA-HASH-ALGO",
            event=http_api_event(
                data_fields, content_type="application/x-www-form-urlencoded", algorithm="sha1", algorithm_header=False
            ),
            status_code=200,
            outcome="accepted",
            expected_event=_expected_event(
                kind="entry_ready",
                dedupe_key=data_fields_key,
                job_id=None,
                template_id=None,
                template_system_name=None,
                event_type=None,
                event_object_type=None,
                object_type=None,
                object_id="1_x4b9c2kq",
                entry_id="1_x4b9c2kq",
                status="2",
                fields={"id": "1_x4b9c2kq", "name": "Quarterly all-hands recording", "status": 2},
                body_format="data_fields",
            ),
        ),
        Sample(
            name="vendor_task_error_base64",
            description="ObjectData JSON delivered base64-encoded by API Gateway; REACH task ERROR, sha256",
            event=http_api_event(task_error, algorithm="sha256", base64_encoded=True),
            status_code=200,
            outcome="accepted",
            expected_event=_expected_event(
                kind="vendor_task_status",
                dedupe_key="1234567:job:33578101902",
                job_id=33578101902,
                template_id=26970240,
                template_system_name="Custom_Entry_Vendor_Task_Status_Changed",
                event_type=3,
                event_object_type=42,
                object_type="KalturaEntryVendorTask",
                object_id="98765433",
                entry_id="1_x4b9c2kq",
                status="6",
                fields=VENDOR_TASK_ERROR_FIELDS,
                body_format="object_json",
            ),
        ),
        Sample(
            name="session_ended_object_json",
            description="ObjectData JSON, KalturaSessionCuePoint with an end time (room session ended), sha256",
            event=http_api_event(session, algorithm="sha256"),
            status_code=200,
            outcome="accepted",
            expected_event=_expected_event(
                kind="session_ended",
                dedupe_key="1234567:job:33578120455",
                job_id=33578120455,
                template_id=26970255,
                template_system_name="Custom_Session_Cue_Point_Changed",
                event_type=3,
                event_object_type="cuePointEventNotifications.CuePoint",
                object_type="KalturaSessionCuePoint",
                object_id="1_s3ss10n7",
                entry_id="1_r00m4x2p",
                status="1",
                fields=SESSION_CUE_POINT_FIELDS,
                body_format="object_json",
            ),
        ),
        Sample(
            name="empty_body",
            description="Stock template without data: empty body signed as sha1(secret); authentic, nothing to act on",
            event=http_api_event(b"", content_type="application/x-www-form-urlencoded", algorithm="sha1"),
            status_code=200,
            outcome="ignored",
            expected_event=None,
        ),
    ]


def render() -> dict[str, str]:
    """File name -> content of every generated file."""
    files: dict[str, str] = {}
    for sample in samples():
        expected = {
            "description": sample.description,
            "status_code": sample.status_code,
            "outcome": sample.outcome,
            "event": sample.expected_event,
        }
        files[f"{sample.name}.event.json"] = json.dumps(sample.event, indent=2) + "\n"
        files[f"{sample.name}.expected.json"] = json.dumps(expected, indent=2) + "\n"
    return files


def main() -> None:
    """Write the generated files next to this script and delete generated files of samples that no longer exist."""
    files = render()
    for path in [*OUTPUT_DIR.glob("*.event.json"), *OUTPUT_DIR.glob("*.expected.json")]:
        if path.name not in files:
            path.unlink()
    for name, content in files.items():
        (OUTPUT_DIR / name).write_text(content, encoding="utf-8")


if __name__ == "__main__":
    main()
