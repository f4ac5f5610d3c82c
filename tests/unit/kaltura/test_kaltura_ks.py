"""KS construction against the docs/kaltura.md#ks-v2 / #app-tokens vectors, and a round trip through an independent
decoder."""

from __future__ import annotations

import base64

import pytest
from kaltura_fakes import PARTNER_ID, SECRET, decode_ks_v2
from kauto.kaltura.ks import app_token_hash, build_ks_v1, build_ks_v2

KS_V2_VECTOR = (
    "djJ8MTIzNDU2N3xF2x4_vHdUErSIuHNmwxlCnxA9D7RscsyHKyeo0KUYUJ_srslw-XwM17bKUhEIadmVcZvdYS_WTuXPXncvnpMF5x32mdPe"
    "__F0z-gTSDZgGavWRqF23_lTXrOXtb4EJB20yAmQYwzTyM6o2vHIAts1V-IpTwrDAMQ_syStEv5ZvA=="
)
KS_V1_VECTOR = (
    "ZWY0Mzg3NmMwZjVhZTZkNWJjNWJiMGJiODFjNTE2MmY1NTgxNTk4ZHwxMjM0NTY3OzEyMzQ1Njc7MTg5MzQ1NjAwMDsyOzEyMzQ7bGFtYmRh"
    "LXdlYmhvb2s7ZGlzYWJsZWVudGl0bGVtZW50"
)
APP_TOKEN = "a3f1c2e4b5d6978812345678abcdef0012345678abcdef0012345678abcdef00"
EXPIRY = 1893456000
RAND16 = bytes(range(16))


def test_ks_v2_reproduces_the_protocol_vector() -> None:
    ks = build_ks_v2(
        SECRET,
        PARTNER_ID,
        expiry=EXPIRY,
        rand16=RAND16,
        user_id="lambda-webhook",
        session_type=2,
        privileges="disableentitlement,privacycontext:MediaSpace",
    )
    assert ks == KS_V2_VECTOR
    assert ks.startswith("djJ8")


def test_ks_v2_vector_decodes_to_the_documented_fields() -> None:
    partner, rand, fields = decode_ks_v2(KS_V2_VECTOR, SECRET)
    assert partner == PARTNER_ID
    assert rand == RAND16
    assert fields == [
        ("disableentitlement", ""),
        ("privacycontext", "MediaSpace"),
        ("_e", str(EXPIRY)),
        ("_t", "2"),
        ("_u", "lambda-webhook"),
    ]


@pytest.mark.parametrize(
    ("privileges", "user_id", "expected_privilege_fields"),
    [
        ("*", "", [("all", "*")]),
        ("", "someone@example.com", []),
        (
            " setrole:123 , privacycontext:A B~C ,",
            "user with spaces",
            [("setrole", "123"), ("privacycontext", "A B~C")],
        ),
    ],
)
def test_ks_v2_round_trips_through_the_independent_decoder(
    privileges: str, user_id: str, expected_privilege_fields: list[tuple[str, str]]
) -> None:
    rand = bytes(reversed(range(16)))
    ks = build_ks_v2(SECRET, 42, expiry=2_000_000_000, rand16=rand, user_id=user_id, privileges=privileges)
    partner, decoded_rand, fields = decode_ks_v2(ks, SECRET)
    assert (partner, decoded_rand) == (42, rand)
    assert fields == [*expected_privilege_fields, ("_e", "2000000000"), ("_t", "2"), ("_u", user_id)]


def test_ks_v2_does_not_decode_with_another_secret() -> None:
    with pytest.raises(AssertionError, match="integrity"):
        decode_ks_v2(KS_V2_VECTOR, "another-secret")


def test_ks_v2_needs_sixteen_random_bytes() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        build_ks_v2(SECRET, PARTNER_ID, expiry=EXPIRY, rand16=b"short")


def test_ks_v1_reproduces_the_protocol_vector() -> None:
    ks = build_ks_v1(
        SECRET, PARTNER_ID, expiry=EXPIRY, rand=1234, user_id="lambda-webhook", privileges="disableentitlement"
    )
    assert ks == KS_V1_VECTOR
    assert base64.b64decode(ks).decode() == (
        "ef43876c0f5ae6d5bc5bb0bb81c5162f5581598d|1234567;1234567;1893456000;2;1234;lambda-webhook;disableentitlement"
    )


@pytest.mark.parametrize(
    ("hash_type", "expected"),
    [
        ("SHA256", "883599bc901d509df9dfbbc065200f06f659ada11a0cbb7f4db81f8ff97fd544"),
        ("SHA1", "848342658b2d0c80843b3f3bfa7d43e863773f19"),
        ("sha256", "883599bc901d509df9dfbbc065200f06f659ada11a0cbb7f4db81f8ff97fd544"),
    ],
)
def test_app_token_hash_reproduces_the_protocol_vectors(hash_type: str, expected: str) -> None:
    assert app_token_hash(KS_V2_VECTOR, APP_TOKEN, hash_type) == expected


def test_app_token_hash_refuses_unknown_hash_types() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        app_token_hash(KS_V2_VECTOR, APP_TOKEN, "SHA384")
