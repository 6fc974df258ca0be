"""The commands of ``keyfob-ssh``, one function each: what they do, apart from parsing.

Each takes the parsed arguments and a :class:`~keyfob.ssh.messages.Console`, returns an
exit code, and raises :class:`~keyfob.ssh.messages.Failure` with the message and code.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from keyfob.otp import (
    KeyURI,
    ParameterError,
    b32encode_secret,
    format_secret_groups,
    random_secret,
    verify_hotp,
    verify_totp,
)
from keyfob.ssh import certificates, gafile, pam_keyfob, serverconfig
from keyfob.ssh.messages import (
    EXIT_FILE,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_SYSTEM,
    EXIT_USAGE,
    Console,
    Failure,
    _,
    file_failure,
    server_failure,
    write_failure,
)

CONFIRM_TRIES = 3
SECRET_BYTES = 20  # 160 bits, what RFC 4226 recommends for HMAC-SHA1


def _account_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.geteuid())
    return f"{user}@{socket.gethostname()}"


def setup(args: argparse.Namespace, console: Console) -> int:
    path: Path = args.secret_file or gafile.default_path()
    if args.counter and args.allow_reuse:
        raise Failure(_("--allow-reuse means nothing with --counter"), EXIT_USAGE)
    if not args.force and os.path.lexists(path):
        raise file_failure(gafile.FileExists(path))
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
        raise file_failure(exc) from exc

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


def status(args: argparse.Namespace, console: Console) -> int:
    path: Path = args.secret_file or gafile.default_path()
    try:
        config = gafile.read(path)
    except gafile.GAFileError as exc:
        raise file_failure(exc) from exc
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


def disable(args: argparse.Namespace, console: Console) -> int:
    path: Path = args.secret_file or gafile.default_path()
    if not os.path.lexists(path):
        raise file_failure(gafile.ReadFailed(path, FileNotFoundError(2, "missing")))
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
        raise file_failure(gafile.WriteFailed(path, exc)) from exc
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
    except serverconfig.ServerConfigError as exc:
        raise server_failure(exc, methods=args.methods, url=args.central) from None


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


def server_config(args: argparse.Namespace, console: Console) -> int:
    if args.certificates:
        return _certificates_config(args, console)
    if args.fallback_pam or args.command_path is not None:
        raise Failure(_("--fallback-pam and --command go with --certificates"), EXIT_USAGE)
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
    except serverconfig.ServerConfigError as exc:
        raise server_failure(exc, sshd=args.sshd) from None

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
        raise write_failure(exc, args.drop_in) from None
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


# -- SSH certificates (issue 26) ----------------------------------------------------------


def _keyfob(args: argparse.Namespace) -> pam_keyfob.Options:
    try:
        return certificates.options(args.url, args.token_file, args.cafile, args.timeout)
    except pam_keyfob.ConfigError:
        raise Failure(
            _("--url {url!r} is not valid: https://host[:port][/path]").format(url=args.url),
            EXIT_USAGE,
        ) from None


def _unreachable(exc: Exception) -> Failure:
    if isinstance(exc, pam_keyfob.ConfigError):
        return Failure(_("the token file cannot be used: {detail}").format(detail=exc), EXIT_FILE)
    return Failure(
        _("Keyfob cannot be reached or refused the request ({detail})").format(detail=exc),
        EXIT_SYSTEM,
    )


def principals(args: argparse.Namespace, console: Console) -> int:
    """Print the principals that may log in as the login (sshd's AuthorizedPrincipalsCommand).
    Fails closed: anything but Keyfob's answer prints nothing and exits non-zero, and sshd
    then refuses the certificate."""
    if not certificates.LOGIN_RE.fullmatch(args.login):
        raise Failure(_("{login!r} is not a Unix login").format(login=args.login), EXIT_USAGE)
    options = _keyfob(args)
    try:
        names = certificates.principals(options, args.login)
    except (pam_keyfob.ConfigError, pam_keyfob.Unavailable) as exc:
        raise _unreachable(exc) from None
    for name in names:
        console.say(name)
    return EXIT_OK


def ca_sync(args: argparse.Namespace, console: Console) -> int:
    """Fetch the CA keys and the revocation list and write them for sshd; nothing is
    written unless both arrived whole."""
    options = _keyfob(args)
    try:
        files = certificates.fetch_ca(options)
    except (pam_keyfob.ConfigError, pam_keyfob.Unavailable) as exc:
        raise _unreachable(exc) from None
    try:
        certificates.write_ca(files, args.ca_file, args.krl_file)
    except OSError as exc:
        raise write_failure(exc, args.ca_file) from None
    console.say(
        _("Written: {ca_file} and {krl_file}.").format(ca_file=args.ca_file, krl_file=args.krl_file)
    )
    return EXIT_OK


def _command_path(args: argparse.Namespace) -> Path:
    if args.command_path is not None:
        return Path(args.command_path)
    found = shutil.which("keyfob-ssh") or sys.argv[0]
    return Path(found).absolute()


def _certificates_config(args: argparse.Namespace, console: Console) -> int:
    if args.central is None or args.token_file is None:
        raise Failure(_("--certificates needs --central URL and --token-file PATH"), EXIT_USAGE)
    if args.nullok or args.methods != serverconfig.DEFAULT_METHODS:
        raise Failure(_("--nullok and --methods do not go with --certificates"), EXIT_USAGE)
    try:
        config = certificates.build_certificates(
            args.central,
            args.token_file,
            _command_path(args),
            cafile=args.cafile,
            ca_file=args.ca_file,
            krl_file=args.krl_file,
            fallback_pam=args.fallback_pam,
            module_dir=args.module_dir,
        )
    except serverconfig.ServerConfigError as exc:
        raise server_failure(exc, methods=args.methods, url=args.central) from None
    if args.fallback_pam and serverconfig.find_module(serverconfig.CENTRAL_MODULE_NAME) is None:
        raise Failure(
            _("pam_python.so is not installed: apt-get install libpam-python"), EXIT_SYSTEM
        )
    if args.write and os.geteuid() != 0:
        raise Failure(_("--write needs root"), EXIT_SYSTEM)
    try:
        serverconfig.check_with_sshd(config.drop_in, sshd=args.sshd, sshd_config=args.sshd_config)
    except serverconfig.ServerConfigError as exc:
        raise server_failure(exc, sshd=args.sshd) from None
    token_failure = _token_file_failure(args)
    if not args.write:
        if token_failure is not None:
            console.say(_("# Warning: {message}").format(message=token_failure.message))
        console.say(_("# {path}").format(path=args.drop_in))
        console.say(config.drop_in.rstrip("\n"))
        if args.fallback_pam:
            console.say()
            console.say(_("# {path}: this line").format(path=args.pam_file))
            console.say(config.pam_line)
        console.say()
        console.say(_("# sshd -t accepts it"))
        return EXIT_OK
    if token_failure is not None:
        raise token_failure
    try:
        options = certificates.options(args.central, args.token_file, args.cafile)
        files = certificates.fetch_ca(options)
    except (pam_keyfob.ConfigError, pam_keyfob.Unavailable) as exc:
        failure = _unreachable(exc)
        raise Failure(
            _("{message}: nothing was written").format(message=failure.message), failure.code
        ) from None
    try:
        current = args.pam_file.read_text(encoding="utf-8") if args.fallback_pam else ""
        certificates.write_ca(files, args.ca_file, args.krl_file)
        if args.fallback_pam:
            serverconfig.install_module(args.module_dir)
            serverconfig.write_file(args.pam_file, serverconfig.updated_pam(current, config))
        serverconfig.write_file(args.drop_in, config.drop_in)
    except OSError as exc:
        raise write_failure(exc, args.drop_in) from None
    console.say(
        _("Written: {drop_in}, {ca_file} and {krl_file}.").format(
            drop_in=args.drop_in, ca_file=args.ca_file, krl_file=args.krl_file
        )
    )
    console.say(
        _("Refresh the CA keys and the revocation list hourly (cron): {command}").format(
            command=f"{_command_path(args)} ca-sync --url {args.central} "
            f"--token-file {args.token_file}" + (f" --cafile {args.cafile}" if args.cafile else "")
        )
    )
    console.say(_("Reload sshd to apply (systemctl reload ssh), and keep a session open."))
    return EXIT_OK
