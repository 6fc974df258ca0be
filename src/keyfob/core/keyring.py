"""Secrets at rest: AES-256-GCM under a key ring (DESIGN.md invariant 3).

The ring comes from ``KEYFOB_SECRET_KEYS`` (comma-separated base64 32-byte keys, newest
first) or, when unset, from ``keyring`` in the data directory, generated on first use with
mode 0600. A ciphertext reads ``v1.<key id>.<base64 nonce+ciphertext>``; the key id is the
first 8 bytes of SHA-256 of the key, in hex, so an old key can still decrypt after a new
one is put in front of it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyfob.core.app_settings import app_settings
from keyfob.otp import KeyfobError


class KeyRingError(KeyfobError):
    """The key ring is missing, malformed, or lacks the key a ciphertext names."""


@functools.lru_cache(maxsize=64)
def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


@functools.lru_cache(maxsize=64)
def _cipher(key: bytes) -> AESGCM:
    """The AES-GCM object of a key, made once per process (every code check decrypts)."""
    return AESGCM(key)


def parse(text: str) -> list[bytes]:
    """The keys of a ring written as comma-separated base64; raises :class:`KeyRingError`."""
    keys = []
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            key = base64.b64decode(item, validate=True)
        except binascii.Error as exc:
            raise KeyRingError("a key in the key ring is not valid base64") from exc
        if len(key) != 32:
            raise KeyRingError("each key in the key ring must be 32 bytes (base64 of 32 bytes)")
        keys.append(key)
    if not keys:
        raise KeyRingError("the key ring is empty")
    return keys


def _generated_ring(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = base64.b64encode(secrets.token_bytes(32)).decode() + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first; use theirs
        return path.read_text()
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return text


@functools.cache
def ring() -> tuple[bytes, ...]:
    """The keys, newest first. Cached per process; tests call ``ring.cache_clear()``."""
    text = app_settings.secret_keys or _generated_ring(app_settings.data_dir / "keyring")
    return tuple(parse(text))


def encrypt(plaintext: bytes, *, context: str) -> str:
    """Encrypt under the newest key; ``context`` (e.g. the row's purpose and id) is bound in."""
    key = ring()[0]
    nonce = secrets.token_bytes(12)
    sealed = _cipher(key).encrypt(nonce, plaintext, context.encode())
    return f"v1.{key_id(key)}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(token: str, *, context: str) -> bytes:
    """Return the plaintext; raise :class:`KeyRingError` if the key is gone or data altered."""
    try:
        version, kid, body = token.split(".", 2)
        raw = base64.urlsafe_b64decode(body.encode())
    except (ValueError, binascii.Error) as exc:
        raise KeyRingError("malformed ciphertext") from exc
    if version != "v1":
        raise KeyRingError("unknown ciphertext version")
    for key in ring():
        if key_id(key) == kid:
            try:
                return _cipher(key).decrypt(raw[:12], raw[12:], context.encode())
            except InvalidTag as exc:
                raise KeyRingError("ciphertext does not authenticate") from exc
    raise KeyRingError(f"no key {kid} in the key ring")


def uses_old_key(token: str) -> bool:
    return not token.startswith(f"v1.{key_id(ring()[0])}.")
