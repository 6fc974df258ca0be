"""otpauth:// key URIs: exact format, round trips, forgiving parsing, clear refusals."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfob.otp import (
    InvalidKeyURI,
    KeyURI,
    ParameterError,
    b32encode_secret,
    totp,
)

SECRET = b"12345678901234567890"
B32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
FAST = settings(max_examples=150, deadline=None)

# Names apps show back unchanged: no control characters or lone surrogates, no leading or
# trailing whitespace; an issuer also has no ':' (the separator).
_CHARS = st.characters(blacklist_categories=("Cc", "Cs"))
ACCOUNTS = st.text(_CHARS, min_size=1, max_size=60).filter(lambda s: s == s.strip())
ISSUERS = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=":"),
    min_size=1,
    max_size=60,
).filter(lambda s: s == s.strip())
KEYS = st.builds(
    KeyURI,
    kind=st.sampled_from(["totp", "hotp"]),
    secret=st.binary(min_size=16, max_size=64),
    account=ACCOUNTS | st.sampled_from(["alice@example.com", "a:b", "x y", "café", "日本"]),
    issuer=ISSUERS | st.sampled_from(["ACME Hosting", "Hébergement & Co", "a@b", "100%"]),
    algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
    digits=st.sampled_from([6, 7, 8]),
)


def _with_kind_fields(key: KeyURI, data: st.DataObject) -> KeyURI:
    if key.kind == "totp":
        return dataclasses.replace(key, period=data.draw(st.integers(1, 86400)))
    return dataclasses.replace(key, counter=data.draw(st.integers(0, 2**64 - 1)))


@FAST
@given(KEYS, st.data())
def test_round_trip(key: KeyURI, data: st.DataObject) -> None:
    key = _with_kind_fields(key, data)
    uri = key.to_uri()
    assert uri.isascii()
    assert not any(ch.isspace() for ch in uri)
    assert KeyURI.parse(uri) == key


@FAST
@given(st.text(max_size=30), st.text(max_size=30))
def test_any_names_either_round_trip_or_are_refused(account: str, issuer: str) -> None:
    try:
        key = KeyURI("totp", SECRET, account, issuer)
    except ParameterError:
        return
    assert KeyURI.parse(key.to_uri()) == key


@FAST
@given(KEYS)
def test_pyotp_reads_our_uris(key: KeyURI) -> None:
    judge = pyotp.parse_uri(key.to_uri())
    assert judge.secret == b32encode_secret(key.secret)
    assert judge.name == key.account
    assert judge.issuer == key.issuer
    assert judge.digits == key.digits
    assert judge.digest is getattr(hashlib, key.algorithm.lower())


def test_exact_format() -> None:
    key = KeyURI("totp", SECRET, "alice@example.com", "ACME Hosting")
    assert key.to_uri() == (
        "otpauth://totp/ACME%20Hosting:alice%40example.com"
        f"?secret={B32}&issuer=ACME%20Hosting&algorithm=SHA1&digits=6&period=30"
    )
    hkey = KeyURI("hotp", SECRET, "bob", "ACME", algorithm="SHA256", digits=8, counter=42)
    assert hkey.to_uri() == (
        f"otpauth://hotp/ACME:bob?secret={B32}&issuer=ACME&algorithm=SHA256&digits=8&counter=42"
    )
    unicode_key = KeyURI("totp", SECRET, "élodie:ops", "Hébergeur")
    parts = urlsplit(unicode_key.to_uri())
    assert parts.path == "/H%C3%A9bergeur:%C3%A9lodie%3Aops"
    assert parse_qs(parts.query)["issuer"] == ["Hébergeur"]


def test_secret_is_not_in_repr() -> None:
    key = KeyURI("totp", SECRET, "alice", "ACME")
    assert B32 not in repr(key) and str(SECRET) not in repr(key)


def test_frozen() -> None:
    key = KeyURI("totp", SECRET, "alice", "ACME")
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.digits = 8  # type: ignore[misc]


def test_parse_reads_what_other_generators_write() -> None:
    # pyotp's provisioning URI, Google's wiki example, and variations apps accept.
    pyotp_uri = pyotp.TOTP(B32, issuer="ACME Co").provisioning_uri(name="jane@example.com")
    key = KeyURI.parse(pyotp_uri)
    assert (key.issuer, key.account, key.secret) == ("ACME Co", "jane@example.com", SECRET)
    google = KeyURI.parse(
        "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
        "&issuer=Example"
    )
    assert (google.issuer, google.account, google.period, google.digits) == (
        "Example",
        "alice@google.com",
        30,
        6,
    )
    variants = [
        f"OTPAUTH://TOTP/ACME:alice?secret={B32.lower()}&issuer=ACME",
        f"otpauth://totp/ACME%3Aalice?secret={B32}",
        f"otpauth://totp/ACME:%20%20alice?secret={B32}&issuer=ACME",
        f"otpauth://totp/alice?secret={B32}&issuer=ACME",
        f"otpauth://totp/ACME:alice?secret={B32}====&algorithm=sha1&image=x&color=red",
        f"otpauth://totp/ACME:alice?issuer=ACME&secret={B32}&period=30&digits=6",
    ]
    for uri in variants:
        assert KeyURI.parse(uri) == KeyURI("totp", SECRET, "alice", "ACME"), uri


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (f"http://totp/A:b?secret={B32}", "scheme"),
        (f"otpauth:totp/A:b?secret={B32}", "kind"),
        (f"otpauth://motp/A:b?secret={B32}", "unknown kind"),
        (f"otpauth://totp/?secret={B32}&issuer=A", "label"),
        (f"otpauth://totp?secret={B32}&issuer=A", "label"),
        ("otpauth://totp/A:b?issuer=A", "secret"),
        ("otpauth://totp/A:b?secret=&issuer=A", "base32"),
        ("otpauth://totp/A:b?secret=GEZD1GNB&issuer=A", "base32"),
        ("otpauth://totp/A:b?secret=GEZDGNBVGY3TQOJQ&issuer=A", "16 bytes"),
        (f"otpauth://totp/A:b?secret={B32}&issuer=B", "mismatch"),
        (f"otpauth://totp/b?secret={B32}", "issuer"),
        (f"otpauth://totp/A:b?secret={B32}&digits=5", "digits"),
        (f"otpauth://totp/A:b?secret={B32}&digits=9", "digits"),
        (f"otpauth://totp/A:b?secret={B32}&digits=+6", "digits"),
        (f"otpauth://totp/A:b?secret={B32}&digits=６", "digits"),
        (f"otpauth://totp/A:b?secret={B32}&digits=", "digits"),
        (f"otpauth://totp/A:b?secret={B32}&algorithm=MD5", "algorithm"),
        (f"otpauth://totp/A:b?secret={B32}&period=0", "period"),
        (f"otpauth://totp/A:b?secret={B32}&period=-30", "period"),
        (f"otpauth://totp/A:b?secret={B32}&period=1e3", "period"),
        (f"otpauth://totp/A:b?secret={B32}&period=99999999999999999999999", "period"),
        (f"otpauth://totp/A:b?secret={B32}&counter=3", "counter"),
        (f"otpauth://hotp/A:b?secret={B32}", "counter"),
        (f"otpauth://hotp/A:b?secret={B32}&counter=-1", "counter"),
        (f"otpauth://hotp/A:b?secret={B32}&counter={2**64}", "counter"),
        (f"otpauth://hotp/A:b?secret={B32}&counter=1&period=30", "period"),
        (f"otpauth://totp/A:b?secret={B32}&secret={B32}", "more than once"),
        (f"otpauth://totp/A:b?secret={B32}#frag", "fragment"),
        (f"otpauth://totp/A:b?secret={B32}&x=%ff", "junk"),
        (f"otpauth://totp/A%ff:b?secret={B32}", "junk"),
        (f"otpauth://totp/A:b?secret={B32} ", "whitespace"),
        (f"otpauth://totp/A:b\n?secret={B32}", "whitespace"),
        (f"otpauth://totp/A:a%0Ab?secret={B32}&issuer=A", "control"),
        (f"otpauth://totp/A:b?secret={B32}&issuer=A:B", "mismatch"),
        (f"otpauth://totp/A:?secret={B32}", "account"),
        ("otpauth://totp/" + "a" * 5000, "at most"),
        ("", "scheme"),
        ("not a uri at all", "whitespace"),
        ("otpauth://[/A:b", "not a URI"),
    ],
)
def test_malformed_uris_say_what_is_wrong(uri: str, message: str) -> None:
    with pytest.raises(InvalidKeyURI, match=message):
        KeyURI.parse(uri)


@pytest.mark.parametrize("not_text", [None, b"otpauth://totp/A:b", 1])
def test_parse_refuses_non_text(not_text: Any) -> None:
    with pytest.raises(InvalidKeyURI):
        KeyURI.parse(not_text)


@FAST
@given(st.text(max_size=80))
def test_parse_never_crashes(text: str) -> None:
    for candidate in (text, "otpauth://totp/" + text, f"otpauth://totp/A:b?secret={B32}&" + text):
        with contextlib.suppress(InvalidKeyURI):
            KeyURI.parse(candidate)


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "motp"},
        {"kind": "TOTP"},
        {"secret": b"short"},
        {"secret": "GEZDGNBVGY3TQOJQ"},
        {"secret": b"x" * 129},
        {"account": ""},
        {"account": " alice"},
        {"account": "alice\n"},
        {"account": "a\x00b"},
        {"account": "a" * 256},
        {"issuer": ""},
        {"issuer": "A:B"},
        {"issuer": "ACME\t"},
        {"issuer": "\ud800"},
        {"algorithm": "MD5"},
        {"algorithm": "sha1"},
        {"digits": 5},
        {"digits": 9},
        {"digits": "6"},
        {"period": 0},
        {"period": 86401},
        {"period": 30.0},
        {"counter": 1},  # totp has no counter
        {"kind": "hotp", "counter": -1},
        {"kind": "hotp", "counter": 2**64},
        {"kind": "hotp", "period": 60},  # hotp has no period
    ],
    ids=repr,
)
def test_constructor_fails_fast(fields: dict[str, Any]) -> None:
    base: dict[str, Any] = {"kind": "totp", "secret": SECRET, "account": "alice", "issuer": "ACME"}
    with pytest.raises(ParameterError):
        KeyURI(**{**base, **fields})


def test_a_parsed_key_gives_the_same_codes_as_pyotp() -> None:
    key = KeyURI("totp", SECRET, "alice", "ACME", algorithm="SHA512", digits=8, period=60)
    judge = pyotp.parse_uri(key.to_uri())
    at = 1_700_000_000
    assert totp(key.secret, at, period=key.period, digits=key.digits, algorithm=key.algorithm) == (
        judge.at(at)
    )
