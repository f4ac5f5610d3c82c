"""Signature verification (docs/kaltura.md#signature): vectors, tampering, rotation, downgrade and length extension."""

from __future__ import annotations

import hashlib
import json

import pytest
from helpers import forge_sha1_extension
from kauto.config import PartnerConfig
from kauto.intake.errors import MalformedRequestError, SignatureError
from kauto.intake.request import WebhookRequest
from kauto.intake.signature import verify_signature

FAKE_SECRET = "0123456789abcdef0123456789abcdef"


def php_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/").encode()


def entry_ready_body() -> bytes:
    """The body of Kaltura's entry-ready notification (ObjectData JSON, KalturaMediaEntry), rebuilt field by field."""
    cdn = "https://cdnapisec.kaltura.com/p/1234567/sp/123456700"
    entry = {
        "mediaType": 1,
        "conversionQuality": 18921322,
        "sourceType": "1",
        "dataUrl": f"{cdn}/playManifest/entryId/1_x4b9c2kq/format/url/protocol/https",
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
        "partnerId": 1234567,
        "userId": "jane.doe@example.com",
        "creatorId": "jane.doe@example.com",
        "tags": "",
        "categories": "",
        "categoriesIds": "",
        "status": 2,
        "moderationStatus": 6,
        "moderationCount": 0,
        "type": 1,
        "createdAt": 1767254400,
        "updatedAt": 1767254712,
        "rank": 0,
        "totalRank": 0,
        "votes": 0,
        "downloadUrl": f"{cdn}/playManifest/entryId/1_x4b9c2kq/format/download/protocol/https/flavorParamIds/0",
        "searchText": "_PAR_ONLY_ _1234567_ _MEDIA_TYPE_1|  Quarterly all-hands recording ",
        "licenseType": -1,
        "version": 0,
        "thumbnailUrl": "https://cfvod.kaltura.com/p/1234567/sp/123456700/thumbnail/entry_id/1_x4b9c2kq/version/100002",
        "accessControlId": 2345678,
        "replacementStatus": 0,
        "partnerSortValue": 0,
        "conversionProfileId": 18921322,
        "rootEntryId": "1_x4b9c2kq",
        "operationAttributes": [],
        "entitledUsersEdit": "",
        "entitledUsersPublish": "",
        "entitledUsersView": "",
        "capabilities": "",
        "displayInSearch": 1,
        "blockAutoTranscript": False,
        "objectType": "KalturaMediaEntry",
    }
    return php_json(
        {
            "object": entry,
            "eventObjectType": 1,
            "eventNotificationJobId": 33578094492,
            "templateId": 26970222,
            "templateName": "Entry Status Equals",
            "templateSystemName": "HTTP_ENTRY_STATUS_EQUALS",
            "eventType": 3,
            "objectType": "KalturaHttpNotification",
        }
    )


def vendor_task_ready_body() -> bytes:
    """The body of Kaltura's vendor-task-ready notification (ObjectData JSON, KalturaEntryVendorTask)."""
    task = {
        "id": 98765432,
        "partnerId": 1234567,
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
        "accessKey": "djJ8MzQ1Njc4OXxGQUtFX0FDQ0VTU19LRVlfRk9SX0RPQ1VNRU5UQVRJT05fT05MWQ==",
        "version": 0,
        "outputObjectId": "1_cap9zq1e",
        "creationMode": 1,
        "expectedFinishTime": 1767341200,
        "serviceType": 2,
        "serviceFeature": 1,
        "turnAroundTime": -1,
        "objectType": "KalturaEntryVendorTask",
    }
    return php_json(
        {
            "object": task,
            "eventObjectType": 42,
            "eventNotificationJobId": 33578101877,
            "templateId": 26970231,
            "templateName": "Task Finished Processing",
            "templateSystemName": "Http_Entry_Vendor_Task_Finished_Processing",
            "eventType": 3,
            "objectType": "KalturaHttpNotification",
        }
    )


# Test vectors (docs/kaltura.md#signature), computed with the FAKE admin secret above.
VECTORS = [
    (entry_ready_body, 1639, "sha1", "00d3947f95bd65f0608f3d61789fa09f091644c7"),
    (entry_ready_body, 1639, "sha256", "d321295bf44cceb62c659da19a63d98949423dd38e06a36b5b12b8eb7e3143a6"),
    (
        entry_ready_body,
        1639,
        "sha512",
        "afad487cbb72955b48b25b118745c374a8bed1ccbecb7ac2b646e25429e3bdf3"
        "3cea77e43aed35427565b7be39c9a726886aaf6785eee23632be5d9b64155aad",
    ),
    (vendor_task_ready_body, 819, "sha1", "5a7d72da4dbca88e202f7ff6ac29c14b335676a6"),
    (vendor_task_ready_body, 819, "sha256", "f94eb842eeed52a852c4fb36a13d7d71a6887927cd37c1f0e7533dfd8c4cd4df"),
    (
        vendor_task_ready_body,
        819,
        "sha512",
        "23aac370f6f76043dbfbfe32266df296cd467596599cf36652e87f35b8a00ac0"
        "4d2498102ad3f703f88b75f2e103cdabae25b4b1ab8d30786b227fb9de16f764",
    ),
]


def partner(*algorithms: str, secret: str = FAKE_SECRET, previous: str | None = None) -> PartnerConfig:
    return PartnerConfig(
        partner_id=1234567,
        admin_secret=secret,
        previous_admin_secret=previous,
        webhook_hash_algorithms=algorithms or ("sha1", "sha256", "sha512"),
        service_url="https://www.kaltura.com",
    )


def headers(signature: str, algorithm: str | None) -> dict[str, str]:
    result = {"x-kaltura-signature": signature}
    if algorithm is not None:
        result["x-kaltura-hash-algo"] = algorithm
    return result


@pytest.mark.parametrize(("build", "length", "algorithm", "signature"), VECTORS)
@pytest.mark.parametrize("announce_algorithm", [True, False])
def test_kaltura_test_vectors_verify_with_and_without_the_algorithm_header(
    build: object, length: int, algorithm: str, signature: str, announce_algorithm: bool
) -> None:
    body = build()  # type: ignore[operator]
    assert len(body) == length  # the rebuilt body is byte-for-byte the sample's

    used = verify_signature(body, headers(signature, algorithm if announce_algorithm else None), partner())

    assert used == algorithm


@pytest.mark.parametrize(("build", "length", "algorithm", "signature"), VECTORS)
def test_wrong_secret_is_rejected(build: object, length: int, algorithm: str, signature: str) -> None:
    with pytest.raises(SignatureError) as error:
        verify_signature(build(), headers(signature, algorithm), partner(secret="f" * 32))  # type: ignore[operator]
    assert error.value.reason == "bad_signature"


def test_a_flipped_bit_in_the_body_is_rejected() -> None:
    body = bytearray(entry_ready_body())
    body[100] ^= 0x01

    with pytest.raises(SignatureError, match="verification failed"):
        verify_signature(bytes(body), headers(VECTORS[1][3], "sha256"), partner())


def test_a_flipped_bit_in_the_signature_is_rejected() -> None:
    signature = VECTORS[1][3]
    flipped = signature[:10] + format(int(signature[10], 16) ^ 0x1, "x") + signature[11:]

    with pytest.raises(SignatureError, match="verification failed"):
        verify_signature(entry_ready_body(), headers(flipped, "sha256"), partner())


@pytest.mark.parametrize("signature", [None, "", "   "])
def test_missing_signature_is_rejected(signature: str | None) -> None:
    request_headers = {} if signature is None else {"x-kaltura-signature": signature}

    with pytest.raises(SignatureError) as error:
        verify_signature(entry_ready_body(), request_headers, partner())
    assert error.value.reason == "missing_signature"


@pytest.mark.parametrize("signature", ["zz" * 32, "é" * 64, VECTORS[1][3] + "00", VECTORS[1][3][:-1]])
def test_signature_of_the_wrong_shape_is_rejected(signature: str) -> None:
    with pytest.raises(SignatureError) as error:
        verify_signature(entry_ready_body(), headers(signature, "sha256"), partner())
    assert error.value.reason == "bad_signature"


def test_upper_case_hex_is_accepted() -> None:
    assert verify_signature(entry_ready_body(), headers(VECTORS[1][3].upper(), "SHA256"), partner()) == "sha256"


def test_header_cannot_downgrade_to_an_algorithm_the_partner_does_not_allow() -> None:
    # A valid sha1 signature (e.g. from an intercepted old delivery) for a partner pinned to sha256.
    with pytest.raises(SignatureError) as error:
        verify_signature(entry_ready_body(), headers(VECTORS[0][3], "sha1"), partner("sha256"))
    assert error.value.reason == "algorithm_not_allowed"


def test_without_the_header_a_signature_length_outside_the_allowed_algorithms_is_rejected() -> None:
    with pytest.raises(SignatureError) as error:
        verify_signature(entry_ready_body(), headers(VECTORS[0][3], None), partner("sha256", "sha512"))
    assert error.value.reason == "bad_signature"


@pytest.mark.parametrize("algorithm", ["md5", "sha384", "none", ""])
def test_header_naming_an_unknown_algorithm_is_rejected(algorithm: str) -> None:
    with pytest.raises(SignatureError) as error:
        verify_signature(entry_ready_body(), headers(VECTORS[1][3], algorithm), partner())
    assert error.value.reason == "algorithm_not_allowed"


def test_previous_secret_is_accepted_during_rotation() -> None:
    rotated = partner(secret="a" * 32, previous=FAKE_SECRET)

    assert verify_signature(entry_ready_body(), headers(VECTORS[1][3], "sha256"), rotated) == "sha256"


def test_neither_current_nor_previous_secret_is_rejected() -> None:
    with pytest.raises(SignatureError):
        verify_signature(entry_ready_body(), headers(VECTORS[1][3], "sha256"), partner(secret="a" * 32, previous="b"))


def test_empty_body_is_signed_as_the_hash_of_the_secret_alone() -> None:
    signature = hashlib.sha1(FAKE_SECRET.encode()).hexdigest()  # noqa: S324 - Kaltura's default algorithm

    assert verify_signature(b"", headers(signature, "sha1"), partner()) == "sha1"


def test_length_extension_forgery_is_stopped_by_the_control_byte_check_before_the_signature() -> None:
    body = entry_ready_body()
    appended = b',"eventNotificationJobId":1,"object":{"status":2}}'
    forged_body, forged_signature = forge_sha1_extension(VECTORS[0][3], len(FAKE_SECRET), body, appended)

    # The forgery is real: Kaltura's plain sha1(secret + body) scheme accepts it, and so would the signature check.
    assert hashlib.sha1(FAKE_SECRET.encode() + forged_body).hexdigest() == forged_signature  # noqa: S324
    assert verify_signature(forged_body, headers(forged_signature, "sha1"), partner()) == "sha1"
    # What stops it: the padding's NUL bytes are refused before any signature is checked.
    request = WebhookRequest("1234567", headers(forged_signature, "sha1"), forged_body, 0, 30.0)
    with pytest.raises(MalformedRequestError) as error:
        request.reject_control_bytes()
    assert error.value.reason == "control_bytes"
