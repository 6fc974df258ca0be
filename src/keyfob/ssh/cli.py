"""``keyfob-ssh``: turn on SSH two-factor authentication with ``pam_google_authenticator``.

Runs on SSH servers where Django is not installed: it imports only ``keyfob.otp``,
``keyfob.qr`` (segno) and the standard library.

Commands::

    keyfob-ssh setup          make a secret, show it, confirm a code, write ~/.google_authenticator
    keyfob-ssh status         what is configured (never the secret)
    keyfob-ssh disable        remove the file after confirmation
    keyfob-ssh server-config  (root) the sshd drop-in and PAM line; --write installs them;
                              with --central URL --token-file PATH, codes are checked by
                              Keyfob (pam_python.so and Keyfob's pam_keyfob.py module)

Exit codes:

    0  success
    1  refused or cancelled (wrong code three times, answer "no", file exists without --force)
    2  usage error (bad option or value)
    3  file problem (missing, bad permissions, bad content, disk full, cannot write)
    4  system problem (not root, PAM module or sshd missing, sshd -t rejects the config)

Messages are in English or French, chosen from LANGUAGE, LC_ALL, LC_MESSAGES, LANG.
"""

from __future__ import annotations

import argparse
import getpass
import gettext
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from keyfob.otp import (
    KeyURI,
    ParameterError,
    b32encode_secret,
    format_secret_groups,
    random_secret,
    verify_hotp,
    verify_totp,
)
from keyfob.ssh import gafile, serverconfig

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_FILE = 3
EXIT_SYSTEM = 4
CONFIRM_TRIES = 3
SECRET_BYTES = 20  # 160 bits, what RFC 4226 recommends for HMAC-SHA1

_LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_translation: gettext.NullTranslations | None = None


def _(message: str) -> str:
    """Translate ``message`` for the environment's language (read on first use)."""
    global _translation
    if _translation is None:
        _translation = gettext.translation("keyfob-ssh", _LOCALE_DIR, fallback=True)
    return _translation.gettext(message)


def _reset_translation() -> None:
    """Forget the chosen language (tests change the environment between calls)."""
    global _translation
    _translation = None


class Failure(Exception):
    """A message for the user and the exit code that goes with it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: {_('error')}: {message}\n")


def _epilog() -> str:
    return _(
        "exit codes: 0 success; 1 refused or cancelled; 2 usage error; "
        "3 file problem (missing, permissions, content, disk full); "
        "4 system problem (not root, PAM module or sshd missing, sshd -t failed)"
    )


def _positive_window(value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) not in gafile.WINDOW_RANGE:
        raise argparse.ArgumentTypeError(_("the window must be a number from 1 to 21"))
    return int(value)


def _rate_limit(value: str) -> tuple[int, int] | None:
    if value.lower() in ("off", "none"):
        return None
    count, sep, seconds = value.partition("/")
    ok = (
        sep == "/"
        and count.isascii()
        and count.isdigit()
        and seconds.isascii()
        and seconds.isdigit()
        and int(count) in gafile.RATE_COUNT_RANGE
        and int(seconds) in gafile.RATE_SECONDS_RANGE
    )
    if not ok:
        raise argparse.ArgumentTypeError(
            _("the rate limit must be N/SECONDS with N from 1 to 10 and SECONDS from 15 to 600")
        )
    return int(count), int(seconds)


def _emergency_count(value: str) -> int:
    if (
        not value.isascii()
        or not value.isdigit()
        or not 0 <= int(value) <= gafile.MAX_SCRATCH_CODES
    ):
        raise argparse.ArgumentTypeError(_("the number of emergency codes must be from 0 to 10"))
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="keyfob-ssh",
        description=_("Two-factor authentication for SSH with pam_google_authenticator."),
        epilog=_epilog(),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    setup = commands.add_parser(
        "setup",
        help=_("make a secret and turn two-factor authentication on for your account"),
        epilog=_epilog(),
    )
    setup.add_argument(
        "--counter", action="store_true", help=_("counter-based codes (HOTP) instead of time")
    )
    setup.add_argument(
        "--window",
        type=_positive_window,
        default=gafile.DEFAULT_WINDOW,
        metavar="N",
        help=_("number of codes accepted around the expected one (default: 3)"),
    )
    setup.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=gafile.DEFAULT_RATE_LIMIT,
        metavar="N/SECONDS",
        help=_("at most N logins per SECONDS (default: 3/30; 'off' turns it off)"),
    )
    setup.add_argument(
        "--allow-reuse",
        action="store_true",
        help=_("accept the same time-based code more than once (not recommended)"),
    )
    setup.add_argument(
        "--emergency-codes",
        type=_emergency_count,
        default=gafile.DEFAULT_SCRATCH_CODES,
        metavar="N",
        help=_("number of single-use emergency codes (default: 5)"),
    )
    _secret_file_option(setup)
    setup.add_argument(
        "--issuer",
        default=None,
        metavar="NAME",
        help=_("name shown in the authenticator app (default: this host's name)"),
    )
    setup.add_argument("--force", action="store_true", help=_("replace an existing file"))
    setup.add_argument(
        "--no-confirm", action="store_true", help=_("do not ask for a code before writing")
    )
    setup.add_argument(
        "--quiet",
        action="store_true",
        help=_("no QR code and no explanations: only the URI and emergency codes"),
    )

    status = commands.add_parser(
        "status", help=_("show what is configured, without the secret"), epilog=_epilog()
    )
    _secret_file_option(status)

    disable = commands.add_parser(
        "disable", help=_("turn two-factor authentication off (removes the file)"), epilog=_epilog()
    )
    _secret_file_option(disable)
    disable.add_argument("--yes", action="store_true", help=_("do not ask for confirmation"))

    server = commands.add_parser(
        "server-config",
        help=_("(administrator) print or write the sshd and PAM configuration"),
        epilog=_epilog(),
    )
    server.add_argument(
        "--write", action="store_true", help=_("write the files (root); default: print them")
    )
    server.add_argument(
        "--methods",
        default=serverconfig.DEFAULT_METHODS,
        help=_("sshd AuthenticationMethods (default: publickey,keyboard-interactive)"),
    )
    server.add_argument(
        "--nullok",
        action="store_true",
        help=_("let users without a file log in without a code (roll-out only)"),
    )
    server.add_argument(
        "--drop-in",
        type=Path,
        default=serverconfig.DEFAULT_DROP_IN,
        metavar="PATH",
        help=_("sshd drop-in to write (default: %(default)s)"),
    )
    server.add_argument(
        "--pam-file",
        type=Path,
        default=serverconfig.DEFAULT_PAM_FILE,
        metavar="PATH",
        help=_("PAM service file to update (default: %(default)s)"),
    )
    server.add_argument(
        "--sshd-config",
        type=Path,
        default=serverconfig.DEFAULT_SSHD_CONFIG,
        metavar="PATH",
        help=_("main sshd configuration, for sshd -t (default: %(default)s)"),
    )
    server.add_argument(
        "--sshd",
        type=Path,
        default=serverconfig.DEFAULT_SSHD,
        metavar="PATH",
        help=_("sshd binary, for sshd -t (default: %(default)s)"),
    )
    server.add_argument(
        "--central",
        default=None,
        metavar="URL",
        help=_("check codes with Keyfob at this https:// URL instead of a file per user"),
    )
    server.add_argument(
        "--token-file",
        type=Path,
        default=None,
        metavar="PATH",
        help=_("with --central: the file holding this server's token (root only, mode 0600)"),
    )
    server.add_argument(
        "--cafile",
        type=Path,
        default=None,
        metavar="PATH",
        help=_("with --central: CA certificates to trust for Keyfob (default: the system's)"),
    )
    server.add_argument(
        "--module-dir",
        type=Path,
        default=serverconfig.DEFAULT_MODULE_DIR,
        metavar="PATH",
        help=_("with --central: where to install pam_keyfob.py (default: %(default)s)"),
    )
    return parser


def _secret_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret-file",
        type=Path,
        default=None,
        metavar="PATH",
        help=_("the file (default: ~/.google_authenticator)"),
    )


# -- messages for file errors -------------------------------------------------------------


def _file_failure(error: gafile.GAFileError) -> Failure:
    path = str(error.path)
    if isinstance(error, gafile.BadPermissions):
        message = _(
            "{path} has mode {mode:04o} and owner uid {uid}: pam_google_authenticator "
            "refuses it. It must belong to you (uid {expected}) and be readable by you only: "
            "chmod 400 {path}"
        ).format(path=path, mode=error.mode, uid=error.uid, expected=error.expected_uid)
    elif isinstance(error, gafile.BadSecret):
        message = _(
            "{path} does not start with a valid secret: run keyfob-ssh setup --force"
        ).format(path=path)
    elif isinstance(error, gafile.MalformedFile):
        message = _("{path} is not a valid google_authenticator file ({detail})").format(
            path=path, detail=error.detail
        )
    elif isinstance(error, gafile.FileExists):
        return Failure(
            _("{path} already exists: use --force to replace it").format(path=path),
            EXIT_REFUSED,
        )
    elif isinstance(error, gafile.DiskFull):
        message = _("no space left to write {path}: nothing was changed").format(path=path)
    elif isinstance(error, gafile.ReadFailed) and error.errno == 2:
        message = _(
            "{path} does not exist: two-factor authentication is not set up (keyfob-ssh setup)"
        ).format(path=path)
    elif isinstance(error, gafile.ReadFailed):
        message = _("cannot read {path}: {detail}").format(path=path, detail=error.detail)
    else:
        message = _("cannot write {path}: {detail}: nothing was changed").format(
            path=path, detail=error.detail
        )
    return Failure(message, EXIT_FILE)


# -- commands -----------------------------------------------------------------------------


class Console:
    """Where the CLI reads and writes; tests pass their own streams."""

    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        ask: Callable[[str], str] | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._ask = ask

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def ask(self, prompt: str) -> str | None:
        """Return the answer, or None at end of input."""
        try:
            if self._ask is not None:
                return self._ask(prompt)
            self.out.write(prompt)
            self.out.flush()
            line = sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            return None
        return line.rstrip("\n") if line else None


def _account_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.geteuid())
    return f"{user}@{socket.gethostname()}"


def cmd_setup(args: argparse.Namespace, console: Console) -> int:
    path: Path = args.secret_file or gafile.default_path()
    if args.counter and args.allow_reuse:
        raise Failure(_("--allow-reuse means nothing with --counter"), EXIT_USAGE)
    if not args.force and os.path.lexists(path):
        raise _file_failure(gafile.FileExists(path))
    if not path.parent.is_dir():
        raise Failure(_("the directory {dir} does not exist").format(dir=path.parent), EXIT_FILE)

    secret = random_secret(SECRET_BYTES)
    b32 = b32encode_secret(secret)
    issuer = args.issuer or socket.gethostname()
    try:
        uri = KeyURI(
            kind="hotp" if args.counter else "totp",
            secret=secret,
            account=_account_name(),
            issuer=issuer,
            counter=gafile.FIRST_HOTP_COUNTER if args.counter else 0,
        ).to_uri()
    except ParameterError as exc:
        raise Failure(
            _("--issuer {issuer!r} cannot be used: {detail}").format(issuer=issuer, detail=exc),
            EXIT_USAGE,
        ) from None
    if args.quiet:
        console.say(uri)
    else:
        from keyfob.qr import terminal  # segno: only when a QR code is shown

        console.say(_("Scan this QR code with your authenticator app:"))
        console.say(terminal(uri))
        console.say(_("Or enter this key by hand: {key}").format(key=format_secret_groups(b32)))
        console.say(_("Key URI: {uri}").format(uri=uri))
        console.say()

    hotp_counter = gafile.FIRST_HOTP_COUNTER if args.counter else None
    used_steps: tuple[int, ...] = ()
    if not args.no_confirm:
        matched = _confirm(console, secret, counter=hotp_counter, window=args.window)
        if matched is None:
            raise Failure(_("Wrong code three times: nothing was written."), EXIT_REFUSED)
        if hotp_counter is not None:
            hotp_counter = matched + 1  # the confirmation code is spent
        elif not args.allow_reuse:
            used_steps = (matched,)  # and so is this one

    config = gafile.GAConfig(
        secret=secret,
        totp=not args.counter,
        hotp_counter=hotp_counter,
        window_size=args.window,
        disallow_reuse=not args.counter and not args.allow_reuse,
        used_steps=used_steps,
        rate_limit=args.rate_limit,
        scratch_codes=gafile.new_scratch_codes(args.emergency_codes),
    )
    try:
        gafile.write_atomic(path, gafile.serialise(config), force=args.force)
    except gafile.GAFileError as exc:
        raise _file_failure(exc) from exc

    if not args.quiet:
        console.say(_("Two-factor authentication is on: {path} written.").format(path=path))
        if config.scratch_codes:
            console.say(_("Emergency codes, each usable once (keep them somewhere safe, offline):"))
    for code in config.scratch_codes:
        console.say(code if args.quiet else f"  {code}")
    return EXIT_OK


def _confirm(console: Console, secret: bytes, *, counter: int | None, window: int) -> int | None:
    """Ask up to three times; return the matched step or counter, or None."""
    for attempt in range(CONFIRM_TRIES):
        answer = console.ask(_("Code shown by your app: "))
        if answer is None:
            return None
        code = answer.strip().replace(" ", "")
        if counter is None:
            matched = verify_totp(secret, code, time.time(), window=1)
        else:
            matched = verify_hotp(secret, code, counter, look_ahead=window - 1)
        if matched is not None:
            return matched
        if attempt < CONFIRM_TRIES - 1:
            console.say(_("That code is not right, try again."))
    return None


def _yes_no(value: bool) -> str:
    return _("yes") if value else _("no")


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    path: Path = args.secret_file or gafile.default_path()
    try:
        config = gafile.read(path)
    except gafile.GAFileError as exc:
        raise _file_failure(exc) from exc
    kinds = {
        "totp": _("time-based (TOTP), a new code every {step} s").format(
            step=config.effective_step
        ),
        "hotp": _("counter-based (HOTP), next counter {counter}").format(
            counter=config.hotp_counter
        ),
        "none": _("none: only emergency codes can log in"),
    }
    console.say(_("File: {path}").format(path=path))
    console.say(_("Kind: {kind}").format(kind=kinds[config.kind]))
    console.say(_("Window: {n} codes").format(n=config.effective_window))
    if config.kind == "totp":
        console.say(
            _("Same code accepted twice: {answer}").format(
                answer=_yes_no(not config.disallow_reuse)
            )
        )
    if config.rate_limit is None:
        console.say(_("Rate limit: off"))
    else:
        count, seconds = config.rate_limit
        console.say(
            _("Rate limit: {count} logins per {seconds} s").format(count=count, seconds=seconds)
        )
    console.say(_("Emergency codes left: {n}").format(n=len(config.scratch_codes)))
    return EXIT_OK


def cmd_disable(args: argparse.Namespace, console: Console) -> int:
    path: Path = args.secret_file or gafile.default_path()
    if not os.path.lexists(path):
        raise _file_failure(gafile.ReadFailed(path, FileNotFoundError(2, "missing")))
    if not args.yes:
        answer = console.ask(
            _("Remove {path} and turn two-factor authentication off? [y/N] ").format(path=path)
        )
        if answer is None or answer.strip().lower() not in (_("y"), _("yes"), "y", "yes"):
            console.say(_("Cancelled: nothing was changed."))
            return EXIT_REFUSED
    try:
        path.unlink()
    except OSError as exc:
        raise _file_failure(gafile.WriteFailed(path, exc)) from exc
    console.say(_("{path} removed: two-factor authentication is off.").format(path=path))
    return EXIT_OK


def _server_config(args: argparse.Namespace) -> serverconfig.ServerConfig:
    central = args.central is not None
    if not central and (args.token_file is not None or args.cafile is not None):
        raise Failure(_("--token-file and --cafile go with --central"), EXIT_USAGE)
    if central and args.token_file is None:
        raise Failure(_("--central needs --token-file PATH"), EXIT_USAGE)
    try:
        if central:
            return serverconfig.build_central(
                args.central,
                args.token_file,
                args.methods,
                nullok=args.nullok,
                cafile=args.cafile,
                module_dir=args.module_dir,
            )
        return serverconfig.build(args.methods, nullok=args.nullok)
    except serverconfig.BadMethods:
        raise Failure(
            _(
                "--methods {methods!r} is not valid: methods separated by commas, "
                "each list ending with keyboard-interactive"
            ).format(methods=args.methods),
            EXIT_USAGE,
        ) from None
    except serverconfig.BadCentral:
        raise Failure(
            _(
                "--central {url!r} is not valid: https://host[:port][/path] without spaces, "
                "and absolute paths without spaces for the files"
            ).format(url=args.central),
            EXIT_USAGE,
        ) from None


def _token_file_failure(args: argparse.Namespace) -> Failure | None:
    problem = serverconfig.token_file_problem(args.token_file)
    if problem == "missing":
        message = _(
            "{path} does not exist: run `keyfob server-token create NAME` on the Keyfob "
            "server and store the token in it (owner root, mode 0600)"
        ).format(path=args.token_file)
    elif problem is not None:
        message = _(
            "{path} must be a file of root's that only root can read: "
            "chown root {path} && chmod 600 {path}"
        ).format(path=args.token_file)
    else:
        return None
    return Failure(message, EXIT_FILE)


def cmd_server_config(args: argparse.Namespace, console: Console) -> int:
    config = _server_config(args)
    central = args.central is not None
    if central:
        module = serverconfig.find_module(serverconfig.CENTRAL_MODULE_NAME)
        if module is None:
            raise Failure(
                _("pam_python.so is not installed: apt-get install libpam-python"), EXIT_SYSTEM
            )
    else:
        module = serverconfig.find_module()
        if module is None:
            raise Failure(
                _(
                    "pam_google_authenticator.so is not installed: "
                    "apt-get install libpam-google-authenticator"
                ),
                EXIT_SYSTEM,
            )
    if args.write and os.geteuid() != 0:
        raise Failure(_("--write needs root"), EXIT_SYSTEM)
    try:
        serverconfig.check_with_sshd(config.drop_in, sshd=args.sshd, sshd_config=args.sshd_config)
    except serverconfig.SshdMissing:
        raise Failure(
            _("{sshd} not found: apt-get install openssh-server").format(sshd=args.sshd),
            EXIT_SYSTEM,
        ) from None
    except serverconfig.SshdRejected as exc:
        raise Failure(
            _("sshd -t rejects the configuration, nothing was written:\n{output}").format(
                output=exc.output
            ),
            EXIT_SYSTEM,
        ) from None

    token_failure = _token_file_failure(args) if central else None
    if central and args.cafile is not None and not args.cafile.is_file():
        raise Failure(_("{path} does not exist").format(path=args.cafile), EXIT_FILE)

    if not args.write:
        if central:
            console.say(
                _("# {path}: Keyfob's PAM module, copied from {source}").format(
                    path=args.module_dir / serverconfig.CENTRAL_SCRIPT,
                    source=serverconfig.module_source(),
                )
            )
        if token_failure is not None:
            console.say(_("# Warning: {message}").format(message=token_failure.message))
        console.say(_("# {path}").format(path=args.drop_in))
        console.say(config.drop_in.rstrip("\n"))
        console.say()
        console.say(_("# {path}: this line").format(path=args.pam_file))
        console.say(config.pam_line)
        if config.comment_out_common_auth:
            console.say(_("# and comment out '@include common-auth' (no password after the key)"))
        console.say()
        console.say(_("# sshd -t accepts it; module found: {module}").format(module=module))
        return EXIT_OK

    if token_failure is not None:
        raise token_failure
    try:
        current = args.pam_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise Failure(
            _("cannot read {path}: {detail}").format(path=args.pam_file, detail=exc.strerror),
            EXIT_FILE,
        ) from None
    try:
        if central:
            serverconfig.install_module(args.module_dir)
        serverconfig.write_file(args.drop_in, config.drop_in)
        serverconfig.write_file(args.pam_file, serverconfig.updated_pam(current, config))
    except OSError as exc:
        raise Failure(
            _("cannot write {path}: {detail}: nothing was changed").format(
                path=exc.filename or args.drop_in, detail=exc.strerror
            ),
            EXIT_FILE,
        ) from None
    console.say(
        _("Written: {drop_in} and {pam_file}.").format(drop_in=args.drop_in, pam_file=args.pam_file)
    )
    if central:
        console.say(
            _("Installed: {path}.").format(path=args.module_dir / serverconfig.CENTRAL_SCRIPT)
        )
    missing = serverconfig.not_in_effect(args.methods, sshd=args.sshd, sshd_config=args.sshd_config)
    if missing:
        console.say(
            _("Warning: sshd -T does not show {settings}: does {config} include {drop_in}?").format(
                settings=", ".join(missing), config=args.sshd_config, drop_in=args.drop_in
            )
        )
    console.say(_("Reload sshd to apply (systemctl reload ssh), and keep a session open."))
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "setup": cmd_setup,
    "status": cmd_status,
    "disable": cmd_disable,
    "server-config": cmd_server_config,
}


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    """Run the CLI; return the exit code (see the module docstring)."""
    console = console or Console()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return COMMANDS[args.command](args, console)
    except Failure as failure:
        print(f"keyfob-ssh: {failure.message}", file=console.err, flush=True)
        return failure.code
    except KeyboardInterrupt:
        print(file=console.err)
        return EXIT_REFUSED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
