"""KalturaAPIException bodies become typed errors with the right disposition, and never carry a secret."""

from __future__ import annotations

import pytest
from kaltura_fakes import SECRET
from kauto.kaltura import (
    Disposition,
    KalturaAlreadyDoneError,
    KalturaAPIError,
    KalturaAppTokenError,
    KalturaCreditError,
    KalturaInvalidRequestError,
    KalturaInvalidSessionError,
    KalturaNotFoundError,
    KalturaNotReadyError,
    KalturaPermissionError,
    KalturaQueryTimeoutError,
    KalturaRateLimitedError,
    KalturaRejectedError,
    KalturaResultLimitError,
    KalturaServerError,
)
from kauto.kaltura.errors import error_from_body, is_api_exception, scrub

KS = (
    "djJ8MTIzNDU2N3xF2x4_vHdUErSIuHNmwxlCnxA9D7RscsyHKyeo0KUYUJ_srslw-XwM17bKUhEIadmVcZvdYS_WTuXPXncvnpMF5x32mdPe"
    "__F0z-gTSDZgGavWRqF23_lTXrOXtb4EJB20yAmQYwzTyM6o2vHIAts1V-IpTwrDAMQ_syStEv5ZvA=="
)
KS_V1 = "ZWY0Mzg3NmMwZjVhZTZkNWJjNWJiMGJiODFjNTE2MmY1NTgxNTk4ZHwxMjM0NTY3OzEyMzQ1Njc7MTg5MzQ1NjAwMDsy"


def body(code: str, message: str = "something", args: object = ()) -> dict[str, object]:
    return {"code": code, "message": message, "objectType": "KalturaAPIException", "args": args or []}


@pytest.mark.parametrize(
    ("code", "error_class", "disposition"),
    [
        ("ACTION_BLOCKED", KalturaRateLimitedError, Disposition.RETRYABLE),
        ("DRUID_QUERY_TIMED_OUT", KalturaQueryTimeoutError, Disposition.RETRYABLE),
        ("INTERNAL_SERVERL_ERROR", KalturaServerError, Disposition.RETRYABLE),
        ("INVALID_KS", KalturaInvalidSessionError, Disposition.PERMANENT),
        ("ENTRY_ID_NOT_FOUND", KalturaNotFoundError, Disposition.PERMANENT),
        ("ENTRY_NOT_READY", KalturaNotReadyError, Disposition.RETRY_LATER),
        ("REQUIRE_CAPTION", KalturaNotReadyError, Disposition.RETRY_LATER),
        ("ENTRY_TYPE_NOT_SUPPORTED", KalturaRejectedError, Disposition.PERMANENT),
        ("ENTRY_TOO_SHORT", KalturaRejectedError, Disposition.PERMANENT),
        ("FEATURE_TYPE_NOT_SUPPORTED_FOR_ENTRY", KalturaRejectedError, Disposition.PERMANENT),
        ("TASK_NOT_CREATED", KalturaRejectedError, Disposition.PERMANENT),
        ("CATALOG_ITEM_NOT_FOUND", KalturaNotFoundError, Disposition.PERMANENT),
        ("CATALOG_ITEM_NOT_ENABLED_FOR_ACCOUNT", KalturaPermissionError, Disposition.PERMANENT),
        ("REACH_PROFILE_NOT_FOUND", KalturaNotFoundError, Disposition.PERMANENT),
        ("ENTRY_VENDOR_TASK_DUPLICATION", KalturaAlreadyDoneError, Disposition.ALREADY_DONE),
        ("EXCEEDED_MAX_CREDIT_ALLOWED", KalturaCreditError, Disposition.PERMANENT),
        ("CREDIT_EXPIRED", KalturaCreditError, Disposition.PERMANENT),
        ("ENTRY_VENDOR_TASK_NOT_FOUND", KalturaNotFoundError, Disposition.PERMANENT),
        ("SERVICE_FORBIDDEN", KalturaPermissionError, Disposition.PERMANENT),
        ("FEATURE_FORBIDDEN", KalturaPermissionError, Disposition.PERMANENT),
        ("SEARCH_TOO_GENERAL", KalturaResultLimitError, Disposition.PERMANENT),
        ("REPORT_NOT_FOUND", KalturaNotFoundError, Disposition.PERMANENT),
        ("REPORT_PARAMETER_MISSING", KalturaInvalidRequestError, Disposition.PERMANENT),
        ("PARTNER_DATA_NOT_VALID_JSON_STRING", KalturaInvalidRequestError, Disposition.PERMANENT),
        ("APP_TOKEN_ID_NOT_FOUND", KalturaAppTokenError, Disposition.PERMANENT),
        ("APP_TOKEN_NOT_ACTIVE", KalturaAppTokenError, Disposition.PERMANENT),
        ("APP_TOKEN_EXPIRED", KalturaAppTokenError, Disposition.PERMANENT),
        ("INVALID_APP_TOKEN_HASH", KalturaAppTokenError, Disposition.PERMANENT),
    ],
)
def test_error_codes_map_to_typed_errors(code: str, error_class: type, disposition: Disposition) -> None:
    error = error_from_body(body(code))
    assert type(error) is error_class
    assert error.code == code
    assert error.disposition is disposition
    assert error.retryable is (disposition in (Disposition.RETRYABLE, Disposition.RETRY_LATER))


def test_credit_errors_share_one_class_the_automations_alert_on() -> None:
    for code in ("EXCEEDED_MAX_CREDIT_ALLOWED", "CREDIT_EXPIRED"):
        error = error_from_body(body(code, args={"ENTRY_ID": "1_x", "CATALOG_ITEM_ID": "445566"}))
        assert isinstance(error, KalturaCreditError)
        assert error.api_args == {"ENTRY_ID": "1_x", "CATALOG_ITEM_ID": "445566"}


def test_result_limit_reported_as_internal_error_is_permanent() -> None:
    error = error_from_body(
        body("INTERNAL_SERVERL_ERROR", "Internal server error occurred: result limit is 12000 rows")
    )
    assert isinstance(error, KalturaResultLimitError)
    assert error.disposition is Disposition.PERMANENT


def test_unknown_codes_are_permanent_and_keep_code_message_and_args() -> None:
    error = error_from_body(body("SOMETHING_NEW", "Brand new failure", {"ID": "7"}))
    assert type(error) is KalturaAPIError
    assert error.disposition is Disposition.PERMANENT
    assert (error.code, error.message, error.api_args) == ("SOMETHING_NEW", "Brand new failure", {"ID": "7"})
    assert str(error) == "SOMETHING_NEW: Brand new failure"


def test_empty_args_array_becomes_an_empty_mapping() -> None:
    error = error_from_body(body("ACTION_BLOCKED", "blocked", []))
    assert error.api_args == {}


def test_expired_ks_sample_keeps_its_reason() -> None:
    sample = {
        "code": "INVALID_KS",
        "message": 'Invalid KS "EXPIRED", Error "-1,INVALID_STR"',
        "objectType": "KalturaAPIException",
        "args": {"KSID": "EXPIRED", "ERR_CODE": "-1", "ERR_DESC": "INVALID_STR"},
    }
    assert is_api_exception(sample)
    error = error_from_body(sample)
    assert isinstance(error, KalturaInvalidSessionError)
    assert error.api_args["KSID"] == "EXPIRED"
    assert "EXPIRED" in str(error)


@pytest.mark.parametrize("leaked", [KS, KS_V1, "not-a-ks-but-unparseable"])
def test_ks_in_ksid_and_message_is_scrubbed(leaked: str) -> None:
    error = error_from_body(
        body("INVALID_KS", f'Invalid KS "{leaked}", Error "-1,INVALID_STR"', {"KSID": leaked, "ERR_CODE": "-1"}),
        secrets=[leaked] if leaked.startswith("not") else [],
    )
    assert leaked not in str(error)
    assert leaked not in repr(error)
    assert error.api_args["KSID"] == "[REDACTED]"
    assert error.api_args["ERR_CODE"] == "-1"


def test_urls_with_a_ks_and_known_secrets_are_scrubbed() -> None:
    message = (
        f"failed https://cdnapisec.kaltura.com/api_v3/index.php/service/report/action/serve/ks/{KS}/id/f1/report.csv "
        f"and secret={SECRET} and ?ks=abc123"
    )
    error = error_from_body(body("SOMETHING", message), secrets=[SECRET])
    text = str(error)
    assert KS not in text and SECRET not in text and "abc123" not in text
    assert "/ks/[REDACTED]/id/f1/report.csv" in text


def test_scrub_keeps_ordinary_text() -> None:
    text = 'Entry id "1_x4b9c2kq" not found; CANNOT_UPDATE_STATUS_OF_TASK_WHICH_IS_IN_FINAL_STATE'
    assert scrub(text) == text


def test_plain_results_are_not_api_exceptions() -> None:
    assert not is_api_exception({"objectType": "KalturaMediaEntry"})
    assert not is_api_exception([{"objectType": "KalturaAPIException"}])
    assert not is_api_exception("djJ8...")
