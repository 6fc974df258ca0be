"""otpauth:// key URIs: the text a QR code carries to an authenticator app.

Format (Google Authenticator's "Key Uri Format", also read by FreeOTP, Aegis, 2FAS…):

    otpauth://totp/Issuer:account?secret=BASE32&issuer=Issuer&algorithm=SHA1&digits=6&period=30
    otpauth://hotp/Issuer:account?secret=BASE32&issuer=Issuer&algorithm=SHA1&digits=6&counter=0

The issuer and the account are percent-encoded separately (UTF-8, nothing kept literal, a
space is %20 not '+') and joined by a literal ':'. Apps split the decoded label at its
first ':', so an issuer may not contain ':' while an account may. Names are refused when
apps would not show them back unchanged: empty, over 255 characters, leading or trailing
whitespace, control characters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlsplit

from keyfob.otp.codes import ALGORITHMS
from keyfob.otp.errors import InvalidKeyURI, InvalidSecret, ParameterError
from keyfob.otp.keys import MIN_SECRET_BYTES, b32decode_secret, b32encode_secret

__all__ = ["KeyURI"]

_MAX_NAME = 255
_MAX_URI = 4096
_KINDS = ("totp", "hotp")


def _check_name(what: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ParameterError(f"{what} must be non-empty text")
    if len(value) > _MAX_NAME:
        raise ParameterError(f"{what} is longer than {_MAX_NAME} characters")
    if value != value.strip():
        raise ParameterError(f"{what} must not start or end with whitespace")
    # Cc: control characters; Cs: lone surrogates, which cannot be encoded as UTF-8.
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ParameterError(f"{what} must not contain control characters")


def _small_int(what: str, text: str, ceiling: int) -> int:
    """Parse a URI parameter as a plain ASCII decimal (no sign, no spaces) up to `ceiling`."""
    if not (0 < len(text) <= 20 and text.isascii() and text.isdigit()):
        raise InvalidKeyURI(f"{what} must be a decimal number, not {text!r}")
    value = int(text)
    if value > ceiling:
        raise InvalidKeyURI(f"{what} {value} is out of range")
    return value


@dataclass(frozen=True)
class KeyURI:
    """One authenticator entry. Construction validates every field (ParameterError).

    `secret` is left out of repr() so it does not end up in logs.
    """

    kind: str
    secret: bytes = field(repr=False)
    account: str
    issuer: str
    algorithm: str = "SHA1"
    digits: int = 6
    period: int = 30
    counter: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ParameterError(f"kind must be 'totp' or 'hotp', not {self.kind!r}")
        if type(self.secret) is not bytes or len(self.secret) < MIN_SECRET_BYTES:
            raise ParameterError(f"the secret must be at least {MIN_SECRET_BYTES} bytes")
        if len(self.secret) > 128:
            raise ParameterError("the secret must be at most 128 bytes")
        _check_name("issuer", self.issuer)
        if ":" in self.issuer:
            raise ParameterError("issuer must not contain ':' (it separates issuer and account)")
        _check_name("account", self.account)
        if self.algorithm not in ALGORITHMS:
            raise ParameterError(
                f"algorithm must be SHA1, SHA256 or SHA512, not {self.algorithm!r}"
            )
        if type(self.digits) is not int or not 6 <= self.digits <= 8:
            raise ParameterError(f"digits must be 6, 7 or 8, not {self.digits!r}")
        if type(self.period) is not int or not 1 <= self.period <= 86400:
            raise ParameterError(f"period must be 1 to 86400 seconds, not {self.period!r}")
        if type(self.counter) is not int or not 0 <= self.counter < 2**64:
            raise ParameterError(f"counter must be 0 to 2**64-1, not {self.counter!r}")
        # Each kind uses one of the two; a value in the other would be silently lost.
        if self.kind == "totp" and self.counter != 0:
            raise ParameterError("a totp key has no counter")
        if self.kind == "hotp" and self.period != 30:
            raise ParameterError("an hotp key has no period")

    def to_uri(self) -> str:
        """Return the otpauth:// URI for this key (ASCII only)."""
        issuer = quote(self.issuer, safe="")
        params = [
            ("secret", b32encode_secret(self.secret)),
            ("issuer", issuer),
            ("algorithm", self.algorithm),
            ("digits", str(self.digits)),
        ]
        if self.kind == "totp":
            params.append(("period", str(self.period)))
        else:
            params.append(("counter", str(self.counter)))
        query = "&".join(f"{name}={value}" for name, value in params)
        return f"otpauth://{self.kind}/{issuer}:{quote(self.account, safe='')}?{query}"

    @classmethod
    def parse(cls, uri: str) -> KeyURI:
        """Return the KeyURI that `uri` describes.

        Forgiving where apps are: upper-case scheme/kind/algorithm, lower-case or padded
        base32, '%3A' as the label separator, spaces after it, unknown parameters
        (ignored). Raises InvalidKeyURI saying what is wrong otherwise: bad scheme,
        unknown kind, missing or bad secret, issuer mismatch or missing, digits out of
        range, unknown algorithm, bad period or counter, junk.
        """
        if not isinstance(uri, str):
            raise InvalidKeyURI("a key URI is text")
        if len(uri) > _MAX_URI:
            raise InvalidKeyURI(f"a key URI is at most {_MAX_URI} characters")
        if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cs") for ch in uri):
            raise InvalidKeyURI("a key URI contains no whitespace or control characters")
        try:
            parts = urlsplit(uri)
        except ValueError as exc:
            raise InvalidKeyURI(f"not a URI: {exc}") from None
        if parts.scheme.lower() != "otpauth":
            raise InvalidKeyURI(f"the scheme must be otpauth://, not {parts.scheme!r}")
        kind = parts.netloc.lower()
        if kind not in _KINDS:
            raise InvalidKeyURI(f"unknown kind {parts.netloc!r} (totp or hotp)")
        if parts.fragment:
            raise InvalidKeyURI("a key URI has no #fragment")
        if not parts.path.startswith("/") or len(parts.path) < 2:
            raise InvalidKeyURI("the label (issuer:account) is missing")
        try:
            label = unquote(parts.path[1:], errors="strict")
            query = parse_qs(
                parts.query,
                keep_blank_values=True,
                strict_parsing=bool(parts.query),
                errors="strict",
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidKeyURI(f"junk in the URI: {exc}") from None
        params: dict[str, str] = {}
        for name, values in query.items():
            if len(values) != 1:
                raise InvalidKeyURI(f"parameter {name!r} appears more than once")
            params[name] = values[0]

        issuer, sep, account = label.partition(":")
        if sep:
            # The format allows spaces between the separator and the account.
            account = account.lstrip(" ")
        else:
            issuer, account = "", label
        issuer_param = params.get("issuer")
        if issuer and issuer_param is not None and issuer_param != issuer:
            raise InvalidKeyURI(
                f"issuer mismatch: the label says {issuer!r}, the parameter {issuer_param!r}"
            )
        issuer = issuer or issuer_param or ""
        if not issuer:
            raise InvalidKeyURI("the issuer is missing (label prefix or issuer= parameter)")

        if "secret" not in params:
            raise InvalidKeyURI("the secret parameter is missing")
        try:
            secret = b32decode_secret(params["secret"])
        except InvalidSecret as exc:
            raise InvalidKeyURI(f"bad base32 secret: {exc}") from None

        algorithm = params.get("algorithm", "SHA1").upper()
        if algorithm not in ALGORITHMS:
            raise InvalidKeyURI(f"unknown algorithm {params['algorithm']!r}")
        digits = _small_int("digits", params.get("digits", "6"), 99)
        if not 6 <= digits <= 8:
            raise InvalidKeyURI(f"digits must be 6, 7 or 8, not {digits}")
        period, counter = 30, 0
        if kind == "totp":
            if "counter" in params:
                raise InvalidKeyURI("a totp URI has no counter parameter")
            period = _small_int("period", params.get("period", "30"), 86400)
            if period < 1:
                raise InvalidKeyURI("period must be at least 1 second")
        else:
            if "period" in params:
                raise InvalidKeyURI("an hotp URI has no period parameter")
            if "counter" not in params:
                raise InvalidKeyURI("an hotp URI needs a counter parameter")
            counter = _small_int("counter", params["counter"], 2**64 - 1)
        try:
            return cls(
                kind=kind,
                secret=secret,
                account=account,
                issuer=issuer,
                algorithm=algorithm,
                digits=digits,
                period=period,
                counter=counter,
            )
        except ParameterError as exc:
            raise InvalidKeyURI(str(exc)) from None
