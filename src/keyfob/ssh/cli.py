"""``keyfob-ssh``: turn on SSH two-factor authentication with ``pam_google_authenticator``.

Runs on SSH servers where Django is not installed: it imports only ``keyfob.otp``,
``keyfob.qr`` (segno) and the standard library.

Commands::

    keyfob-ssh setup          make a secret, show it, confirm a code, write ~/.google_authenticator
    keyfob-ssh status         what is configured (never the secret)
    keyfob-ssh disable        remove the file after confirmation
    keyfob-ssh login          a short-lived SSH certificate after signing in to the portal
                              (--portal URL [--key ~/.ssh/id_ed25519])
    keyfob-ssh server-config  (root) the sshd drop-in and PAM line; --write installs them;
                              with --central URL --token-file PATH, codes are checked by
                              Keyfob (pam_python.so and Keyfob's pam_keyfob.py module);
                              with --certificates too, logins use Keyfob's SSH certificates
    keyfob-ssh principals     (sshd's AuthorizedPrincipalsCommand) who may log in as LOGIN
    keyfob-ssh ca-sync        (root, hourly) fetch the CA keys and the revocation list

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
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from keyfob.ssh import certificates, commands, gafile, serverconfig
from keyfob.ssh import login as ssh_login
from keyfob.ssh.messages import (  # noqa: F401 - EXIT_* and the translation reset are the CLI's API
    EXIT_FILE,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_SYSTEM,
    EXIT_USAGE,
    Console,
    Failure,
    _,
    _reset_translation,
)


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
    server.add_argument(
        "--certificates",
        action="store_true",
        help=_(
            "with --central: logins use short-lived certificates signed by Keyfob "
            "(keyfob-ssh login) instead of a code at each login"
        ),
    )
    server.add_argument(
        "--fallback-pam",
        action="store_true",
        help=_(
            "with --certificates: without a usable certificate, the password then the "
            "Keyfob code (PAM) may log in instead"
        ),
    )
    _ca_file_options(server)
    server.add_argument(
        "--command",
        dest="command_path",
        type=Path,
        default=None,
        metavar="PATH",
        help=_("with --certificates: this program's absolute path, for sshd (default: found)"),
    )

    principals = commands.add_parser(
        "principals",
        help=_("(sshd) print who may log in as LOGIN with a Keyfob certificate"),
        epilog=_epilog(),
    )
    _keyfob_options(principals)
    principals.add_argument("login", metavar="LOGIN")

    sync = commands.add_parser(
        "ca-sync",
        help=_("(administrator) fetch Keyfob's CA keys and revocation list for sshd"),
        epilog=_epilog(),
    )
    _keyfob_options(sync)
    _ca_file_options(sync)
    login = commands.add_parser(
        "login",
        help=_("get a short-lived SSH certificate after signing in to the portal"),
        epilog=_epilog(),
    )
    login.add_argument(
        "--portal", required=True, metavar="URL", help=_("the portal's https:// address")
    )
    login.add_argument(
        "--key",
        type=Path,
        default=Path("~/.ssh/id_ed25519"),
        metavar="PATH",
        help=_("your private key; only its .pub travels (default: %(default)s)"),
    )
    login.add_argument(
        "--cafile",
        type=Path,
        default=None,
        metavar="PATH",
        help=_("CA certificates to trust for the portal (default: the system's)"),
    )
    login.add_argument(
        "--no-browser", action="store_true", help=_("do not open a browser, only print the link")
    )
    login.add_argument("--no-agent", action="store_true", help=_("do not add it to ssh-agent"))
    return parser


def _keyfob_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, metavar="URL", help=_("Keyfob's https:// URL"))
    parser.add_argument(
        "--token-file",
        type=Path,
        required=True,
        metavar="PATH",
        help=_("the file holding this server's token (root only, mode 0600)"),
    )
    parser.add_argument(
        "--cafile",
        type=Path,
        default=None,
        metavar="PATH",
        help=_("CA certificates to trust for Keyfob (default: the system's)"),
    )
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=5.0,
        metavar="SECONDS",
        help=_("seconds for each call to Keyfob, 0.5 to 30 (default: 5)"),
    )


def _ca_file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ca-file",
        type=Path,
        default=certificates.DEFAULT_CA_FILE,
        metavar="PATH",
        help=_("sshd's TrustedUserCAKeys file (default: %(default)s)"),
    )
    parser.add_argument(
        "--krl-file",
        type=Path,
        default=certificates.DEFAULT_KRL_FILE,
        metavar="PATH",
        help=_("sshd's RevokedKeys file (default: %(default)s)"),
    )


def _timeout(value: str) -> float:
    try:
        seconds = float(value) if value.isascii() else 0.0
    except ValueError:
        seconds = 0.0
    if not 0.5 <= seconds <= 30:
        raise argparse.ArgumentTypeError(_("the timeout must be a number from 0.5 to 30"))
    return seconds


def _login(args: argparse.Namespace, console: Console) -> int:
    ssh_login.login(
        args.portal,
        args.key,
        console,
        cafile=args.cafile,
        open_browser=not args.no_browser,
        agent=not args.no_agent,
    )
    return EXIT_OK


def _secret_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret-file",
        type=Path,
        default=None,
        metavar="PATH",
        help=_("the file (default: ~/.google_authenticator)"),
    )


COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "setup": commands.setup,
    "status": commands.status,
    "disable": commands.disable,
    "server-config": commands.server_config,
    "principals": commands.principals,
    "ca-sync": commands.ca_sync,
    "login": _login,
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
