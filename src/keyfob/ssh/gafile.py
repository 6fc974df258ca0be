"""Read and write the file `pam_google_authenticator` uses (``~/.google_authenticator``).

The format (see FILEFORMAT in Debian's libpam-google-authenticator) is rigid ASCII:

- line 1: the base32 secret (``A-Z2-7``, no padding);
- option lines, each starting with ``" `` followed by an upper-case name that contains an
  underscore: ``RATE_LIMIT n m [state…]``, ``WINDOW_SIZE n``, ``DISALLOW_REUSE [steps…]``,
  ``TOTP_AUTH``, ``STEP_SIZE n``, ``HOTP_COUNTER n`` and a few the module keeps for itself
  (``TIME_SKEW``, ``RESETTING_TIME_SKEW``);
- emergency (scratch) codes: 8-digit numbers, one per line, each removed by the module
  once used.

HOTP is in force when ``HOTP_COUNTER`` is present; TOTP when ``TOTP_AUTH`` is present and
``HOTP_COUNTER`` is not. The module rewrites the file (temporary file + rename in the same
directory) to keep its state, so the directory must be writable by the user.

This module knows nothing of the terminal: it parses, serialises and writes atomically, and
raises :class:`GAFileError` subclasses that the CLI turns into messages.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from keyfob.otp import InvalidSecret, b32decode_secret, b32encode_secret

DEFAULT_FILE_NAME = ".google_authenticator"
# pam_google_authenticator refuses bigger files; staying far below keeps us compatible.
MAX_FILE_SIZE = 64 * 1024
SCRATCH_CODE_DIGITS = 8
MAX_SCRATCH_CODES = 10
WINDOW_RANGE = range(1, 22)  # what google-authenticator's own CLI accepts (1..21)
RATE_COUNT_RANGE = range(1, 11)  # 1..10 logins …
RATE_SECONDS_RANGE = range(15, 601)  # … per 15..600 seconds, as the CLI allows
DEFAULT_WINDOW = 3
DEFAULT_RATE_LIMIT = (3, 30)
DEFAULT_SCRATCH_CODES = 5
DEFAULT_STEP_SIZE = 30
FIRST_HOTP_COUNTER = 1  # FILEFORMAT: HOTP_COUNTER "should be initialized to 1"

_OPTION = re.compile(r'^" ([A-Z][A-Z0-9]*_[A-Z0-9_]*)((?: [^ ]+)*) *$')
_SCRATCH = re.compile(r"^[0-9]{8}$")
_SECRET = re.compile(r"^[A-Z2-7]+$")


class GAFileError(Exception):
    """Something is wrong with a secret file; ``str()`` is an English fallback message.

    ``code`` names the problem; keyfob-ssh's message table turns it into the user's text.
    """

    code = "file_error"

    def __init__(self, path: Path | str, detail: str = "") -> None:
        super().__init__(f"{path}: {detail}" if detail else str(path))
        self.path = Path(path)
        self.detail = detail


class MalformedFile(GAFileError):
    """The content is not a valid google_authenticator file (``detail`` says why)."""

    code = "malformed"


class BadSecret(MalformedFile):
    """The first line is not a base32 secret."""

    code = "bad_secret"


class BadPermissions(GAFileError):
    """The PAM module would refuse this file: wrong owner or readable by others."""

    code = "bad_permissions"

    def __init__(self, path: Path | str, mode: int, uid: int, expected_uid: int) -> None:
        super().__init__(path, f"mode {mode:04o}, owner uid {uid}")
        self.mode = mode
        self.uid = uid
        self.expected_uid = expected_uid


class FileExists(GAFileError):
    """Refused to replace an existing file (no ``force``)."""

    code = "exists"


class DiskFull(GAFileError):
    """Writing failed for lack of space (or quota); nothing was changed."""

    code = "disk_full"


class WriteFailed(GAFileError):
    """Writing failed for another OS reason; nothing was changed. ``errno`` is kept."""

    code = "write_failed"

    def __init__(self, path: Path | str, error: OSError) -> None:
        super().__init__(path, error.strerror or str(error))
        self.errno = error.errno


class ReadFailed(GAFileError):
    """The file could not be read (missing, unreadable…)."""

    code = "read_failed"

    def __init__(self, path: Path | str, error: OSError) -> None:
        super().__init__(path, error.strerror or str(error))
        self.errno = error.errno
        self.code = "missing" if error.errno == errno.ENOENT else "read_failed"


@dataclass(frozen=True)
class GAConfig:
    """The content of a google_authenticator file.

    ``used_steps`` and ``rate_limit_state`` are the module's own bookkeeping (kept as is when
    a file is rewritten); ``extra_options`` keeps option lines we do not interpret.
    """

    secret: bytes
    totp: bool = True
    hotp_counter: int | None = None
    window_size: int | None = DEFAULT_WINDOW
    step_size: int | None = None
    disallow_reuse: bool = True
    used_steps: tuple[int, ...] = ()
    rate_limit: tuple[int, int] | None = DEFAULT_RATE_LIMIT
    rate_limit_state: tuple[str, ...] = ()
    scratch_codes: tuple[str, ...] = ()
    extra_options: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> str:
        """``"hotp"``, ``"totp"`` or ``"none"`` (only emergency codes work), as the module
        decides."""
        if self.hotp_counter is not None:
            return "hotp"
        return "totp" if self.totp else "none"

    @property
    def effective_window(self) -> int:
        return self.window_size if self.window_size is not None else DEFAULT_WINDOW

    @property
    def effective_step(self) -> int:
        return self.step_size if self.step_size is not None else DEFAULT_STEP_SIZE

    def without_scratch_code(self, code: str) -> GAConfig:
        return replace(self, scratch_codes=tuple(c for c in self.scratch_codes if c != code))


def new_scratch_codes(count: int) -> tuple[str, ...]:
    """Return ``count`` distinct 8-digit codes (first digit never 0, like Google's CLI)."""
    if not 0 <= count <= MAX_SCRATCH_CODES:
        raise ValueError(f"emergency codes: 0..{MAX_SCRATCH_CODES}")
    codes: list[str] = []
    while len(codes) < count:
        code = str(10_000_000 + secrets.randbelow(90_000_000))
        if code not in codes:
            codes.append(code)
    return tuple(codes)


def parse(text: str, path: Path | str = "<memory>") -> GAConfig:
    """Parse the file content; raise :class:`BadSecret` or :class:`MalformedFile`."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise BadSecret(path, "empty file, or no secret on the first line")
    first = lines[0].strip()
    if not _SECRET.fullmatch(first):
        raise BadSecret(path, "the first line is not a base32 secret (A-Z, 2-7)")
    try:
        secret = b32decode_secret(first)
    except InvalidSecret as exc:
        raise BadSecret(path, f"the first line is not a base32 secret ({exc})") from exc
    if len(secret) < 10:
        raise BadSecret(path, "the secret is shorter than 80 bits")

    totp = False
    hotp_counter: int | None = None
    window: int | None = None
    step: int | None = None
    reuse_off = False
    used: list[int] = []
    rate: tuple[int, int] | None = None
    rate_state: tuple[str, ...] = ()
    scratch: list[str] = []
    extra: list[str] = []
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if _SCRATCH.fullmatch(line.strip()):
            scratch.append(line.strip())
            continue
        match = _OPTION.fullmatch(line)
        if match is None:
            raise MalformedFile(path, f"line {number} is neither an option nor an 8-digit code")
        name, args = match.group(1), match.group(2).split()
        try:
            if name == "TOTP_AUTH":
                totp = True
            elif name == "HOTP_COUNTER":
                hotp_counter = _int(args[0])
            elif name == "WINDOW_SIZE":
                window = _int(args[0])
            elif name == "STEP_SIZE":
                step = _int(args[0])
            elif name == "DISALLOW_REUSE":
                reuse_off = True
                used = [_int(a) for a in args]
            elif name == "RATE_LIMIT":
                rate = (_int(args[0]), _int(args[1]))
                rate_state = tuple(args[2:])
            else:
                extra.append(line)
        except (IndexError, ValueError):
            raise MalformedFile(path, f"line {number}: bad value for {name}") from None
    return GAConfig(
        secret=secret,
        totp=totp,
        hotp_counter=hotp_counter,
        window_size=window,
        step_size=step,
        disallow_reuse=reuse_off,
        used_steps=tuple(used),
        rate_limit=rate,
        rate_limit_state=rate_state,
        scratch_codes=tuple(scratch),
        extra_options=tuple(extra),
    )


def _int(value: str) -> int:
    # Only ASCII digits: int() would also accept "١٢" or "+3".
    if not value.isascii() or not value.isdigit():
        raise ValueError(value)
    return int(value)


def serialise(config: GAConfig) -> str:
    """Return the file content, options in the order Google's CLI writes them."""
    out = [b32encode_secret(config.secret)]
    if config.rate_limit is not None:
        count, seconds = config.rate_limit
        out.append(" ".join(['" RATE_LIMIT', str(count), str(seconds), *config.rate_limit_state]))
    if config.window_size is not None:
        out.append(f'" WINDOW_SIZE {config.window_size}')
    if config.disallow_reuse:
        out.append(" ".join(['" DISALLOW_REUSE', *(str(s) for s in config.used_steps)]))
    if config.step_size is not None:
        out.append(f'" STEP_SIZE {config.step_size}')
    if config.hotp_counter is not None:
        out.append(f'" HOTP_COUNTER {config.hotp_counter}')
    elif config.totp:
        out.append('" TOTP_AUTH')
    out.extend(config.extra_options)
    out.extend(config.scratch_codes)
    text = "\n".join(out) + "\n"
    if len(text) > MAX_FILE_SIZE:
        raise ValueError("file too big for pam_google_authenticator")
    return text


def default_path() -> Path:
    return Path.home() / DEFAULT_FILE_NAME


def check_permissions(path: Path, st: os.stat_result, uid: int | None = None) -> None:
    """Raise :class:`BadPermissions` unless the PAM module would accept the file's mode and owner.

    The module wants a regular file owned by the user, readable by nobody else: 0400 or 0600.
    """
    expected = os.geteuid() if uid is None else uid
    mode = stat.S_IMODE(st.st_mode)
    if not stat.S_ISREG(st.st_mode) or mode not in (0o400, 0o600) or st.st_uid != expected:
        raise BadPermissions(path, mode, st.st_uid, expected)


def read(path: Path, *, check_mode: bool = True) -> GAConfig:
    """Read and parse ``path``; raise :class:`ReadFailed`, :class:`BadPermissions`,
    :class:`MalformedFile`/:class:`BadSecret`."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            if check_mode:
                check_permissions(path, st)
            data = handle.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        raise ReadFailed(path, exc) from exc
    if len(data) > MAX_FILE_SIZE:
        raise MalformedFile(path, "file larger than 64 KiB")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedFile(path, "the file is not ASCII") from None
    return parse(text, path)


def write_atomic(path: Path, content: str, *, force: bool = False, mode: int = 0o400) -> None:
    """Write ``content`` to ``path`` atomically, with ``mode``, owned by the caller.

    A temporary file in the same directory is written, fsync'ed and renamed over ``path``
    (``force``), or hard-linked to ``path`` so that an existing file is never replaced
    (no ``force``; raises :class:`FileExists`). On any failure the temporary file is removed
    and ``path`` is untouched: :class:`DiskFull` for ENOSPC/EDQUOT, :class:`WriteFailed`
    otherwise.
    """
    directory = path.parent
    if not force and os.path.lexists(path):
        raise FileExists(path, "already exists")
    data = content.encode("ascii")
    tmp: Path | None = None
    try:
        for _ in range(100):
            candidate = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
            try:
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            except FileExistsError:
                continue
            tmp = candidate
            break
        else:  # pragma: no cover - 100 random collisions
            raise OSError(errno.EEXIST, "no free temporary name")
        try:
            os.fchmod(fd, mode)  # the umask may have removed bits we want (0600)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path appeared meanwhile: never replaces
            except FileExistsError:
                raise FileExists(path, "already exists") from None
            os.unlink(tmp)
        tmp = None
        _fsync_directory(directory)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(path, exc.strerror or "no space left on device") from exc
        raise WriteFailed(path, exc) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
