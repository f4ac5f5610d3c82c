"""API Gateway event -> WebhookRequest: size bound before decoding, base64, headers, path partner, control bytes."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kauto.intake import request as request_module
from kauto.intake.errors import MalformedRequestError, PayloadTooLargeError, UnknownPartnerError
from kauto.intake.request import DEFAULT_REMAINING_SECONDS, MAX_BODY_BYTES, WebhookRequest, request_from_api_gateway


def api_event(body: str, *, base64_encoded: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "headers": {"X-Kaltura-Signature": "abc", "content-type": "application/json"},
        "pathParameters": {"partnerId": "1234567"},
        "requestContext": {"timeEpoch": 1767254714123},
        "body": body,
        "isBase64Encoded": base64_encoded,
        **extra,
    }


def test_request_carries_exact_bytes_lowercase_headers_and_api_gateway_receive_time() -> None:
    request = request_from_api_gateway(api_event('{"a":"é"}'), now=5.0, remaining_seconds=9.5)

    assert request.body == '{"a":"é"}'.encode()
    assert request.headers == {"x-kaltura-signature": "abc", "content-type": "application/json"}
    assert (request.partner_id, request.received_at) == (1234567, 1767254714)
    assert request.remaining_seconds == 9.5


def test_base64_body_is_decoded() -> None:
    raw = b"entry_id=1_a&entry_status=2"

    request = request_from_api_gateway(api_event(base64.b64encode(raw).decode(), base64_encoded=True), now=0)

    assert request.body == raw


def test_body_of_exactly_the_limit_is_accepted() -> None:
    assert len(request_from_api_gateway(api_event("a" * MAX_BODY_BYTES), now=0).body) == MAX_BODY_BYTES


@pytest.mark.parametrize(
    "event",
    [
        api_event("a" * (MAX_BODY_BYTES + 1)),
        api_event("é" * (MAX_BODY_BYTES // 2 + 1)),  # few characters, too many bytes
        api_event(base64.b64encode(b"a" * (MAX_BODY_BYTES + 1)).decode(), base64_encoded=True),
        api_event("A" * (4 * MAX_BODY_BYTES), base64_encoded=True),
    ],
)
def test_oversized_body_is_413(event: dict[str, Any]) -> None:
    with pytest.raises(PayloadTooLargeError):
        request_from_api_gateway(event, now=0)


def test_oversized_base64_body_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_decode(*_: object, **__: object) -> bytes:
        raise AssertionError("decoded an oversized body")

    monkeypatch.setattr(request_module.base64, "b64decode", must_not_decode)

    with pytest.raises(PayloadTooLargeError):
        request_from_api_gateway(api_event("A" * (2 * MAX_BODY_BYTES), base64_encoded=True), now=0)


@pytest.mark.parametrize("body", ["not base64!", "YWJ", "YW Jj"])
def test_invalid_base64_is_400(body: str) -> None:
    with pytest.raises(MalformedRequestError) as error:
        request_from_api_gateway(api_event(body, base64_encoded=True), now=0)
    assert error.value.reason == "bad_base64"


def test_missing_body_is_empty_and_missing_time_uses_the_clock() -> None:
    event = api_event("")
    del event["body"], event["requestContext"]

    request = request_from_api_gateway(event, now=1767254000.9)

    assert (request.body, request.received_at) == (b"", 1767254000)
    assert request.remaining_seconds == DEFAULT_REMAINING_SECONDS


@pytest.mark.parametrize("partner", [None, "", "0", "-5", "abc", "1234567/../1", "12345678901234567890", "١٢٣"])
def test_path_partner_id_that_is_not_a_positive_integer_is_unknown(partner: str | None) -> None:
    event = api_event("{}", pathParameters={} if partner is None else {"partnerId": partner})

    with pytest.raises(UnknownPartnerError):
        _ = request_from_api_gateway(event, now=0).partner_id


@pytest.mark.parametrize("byte", [b"\x00", b"\x01", b"\x08", b"\x0b", b"\x0c", b"\x1b", b"\x1f", b"\x7f"])
def test_control_bytes_are_400(byte: bytes) -> None:
    request = WebhookRequest("1", {}, b'{"object":' + byte + b"{}}", 0, 30.0)

    with pytest.raises(MalformedRequestError) as error:
        request.reject_control_bytes()
    assert error.value.reason == "control_bytes"


def test_tab_carriage_return_and_newline_are_allowed() -> None:
    WebhookRequest("1", {}, b'{\t"object":\r\n{}}', 0, 30.0).reject_control_bytes()
