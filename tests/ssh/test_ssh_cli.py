"""`keyfob-ssh` commands: setup, status, disable, server-config; errors, exit codes, French."""

from __future__ import annotations

import ast
import contextlib
import errno
import gettext
import io
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from keyfob.otp import b32decode_secret
from keyfob.ssh import cli, gafile, serverconfig
from tests.conftest import require_tool

SSH_PACKAGE = Path(cli.__file__).resolve().parent
TIMEOUT = 30
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (sshd -t, mount)")


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    cli._reset_translation()
    yield
    cli._reset_translation()


def run(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    answers = iter(stdin.splitlines())

    def ask(prompt: str) -> str:
        out.write(prompt)
        try:
            return next(answers)
        except StopIteration:
            raise EOFError from None

    code = cli.main(argv, cli.Console(out, err, ask))
    return code, out.getvalue(), err.getvalue()


def run_process(
    argv: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LANG")}
    return subprocess.run(
        [sys.executable, "-m", "keyfob.ssh.cli", *argv],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def oathtool(secret: str, *, counter: int | None = None, at: float | None = None) -> str:
    if counter is not None:
        argv = ["--hotp", "-b", "-c", str(counter), secret]
    else:
        argv = ["--totp", "-b", "-N", f"@{int(time.time() if at is None else at)}", secret]
    return subprocess.run(
        [require_tool("oathtool"), *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout.strip()


def uri_params(output: str) -> tuple[str, dict[str, str]]:
    uri = next(line for line in output.splitlines() if line.startswith("otpauth://"))
    parts = urlsplit(uri)
    return parts.netloc, {k: v[0] for k, v in parse_qs(parts.query).items()}


# -- setup ---------------------------------------------------------------------------------


def test_setup_defaults_are_the_safe_ones(tmp_path: Path) -> None:
    path = tmp_path / "ga"
    code, out, err = run(["setup", "--no-confirm", "--quiet", "--secret-file", str(path)])
    assert (code, err) == (0, "")
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    config = gafile.read(path)
    assert config.kind == "totp"
    assert config.window_size == 3
    assert config.disallow_reuse
    assert config.rate_limit == (3, 30)
    assert len(config.scratch_codes) == 5
    kind, params = uri_params(out)
    assert kind == "totp"
    assert params["secret"] == path.read_text().splitlines()[0]
    assert out.splitlines()[1:] == list(config.scratch_codes)  # printed once, here
    assert path.read_text().splitlines()[1:5] == [
        '" RATE_LIMIT 3 30',
        '" WINDOW_SIZE 3',
        '" DISALLOW_REUSE',
        '" TOTP_AUTH',
    ]


def test_setup_options(tmp_path: Path) -> None:
    path = tmp_path / "ga"
    argv = ["setup", "--no-confirm", "--quiet", "--secret-file", str(path), "--counter"]
    argv += ["--window", "5", "--rate-limit", "off", "--emergency-codes", "0", "--issuer", "ACME"]
    code, out, _err = run(argv)
    assert code == 0
    assert path.read_text().splitlines()[1:] == ['" WINDOW_SIZE 5', '" HOTP_COUNTER 1']
    kind, params = uri_params(out)
    assert (kind, params["counter"], params["issuer"]) == ("hotp", "1", "ACME")


@pytest.mark.parametrize(
    "options",
    [
        ["--window", "0"],
        ["--window", "22"],
        ["--window", "٣"],
        ["--rate-limit", "3"],
        ["--rate-limit", "11/30"],
        ["--rate-limit", "3/5"],
        ["--emergency-codes", "11"],
        ["--counter", "--allow-reuse"],
        ["--issuer", "a:b"],
        ["--bogus"],
    ],
)
def test_setup_usage_errors_exit_2_and_write_nothing(tmp_path: Path, options: list[str]) -> None:
    path = tmp_path / "ga"
    with contextlib.redirect_stderr(io.StringIO()):
        code, _out, _err = run(["setup", "--no-confirm", "--secret-file", str(path), *options])
    assert code == 2
    assert not path.exists()


def test_setup_refuses_to_replace_without_force(tmp_path: Path) -> None:
    path = tmp_path / "ga"
    run(["setup", "--no-confirm", "--quiet", "--secret-file", str(path)])
    before = path.read_text()
    code, _out, err = run(["setup", "--no-confirm", "--quiet", "--secret-file", str(path)])
    assert code == 1
    assert "already exists: use --force" in err
    assert path.read_text() == before
    code, _out, _err = run(
        ["setup", "--no-confirm", "--quiet", "--force", "--secret-file", str(path)]
    )
    assert code == 0
    assert path.read_text() != before
    assert os.listdir(tmp_path) == ["ga"]


def test_setup_confirm_three_wrong_codes_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ga"
    code, out, err = run(
        ["setup", "--quiet", "--secret-file", str(path)], stdin="000000\nabc\n\n999999\n"
    )
    assert code == 1
    assert out.count("Code shown by your app: ") == 3
    assert "nothing was written" in err
    assert not path.exists()


def test_setup_confirm_end_of_input_is_a_cancel(tmp_path: Path) -> None:
    code, _out, _err = run(["setup", "--quiet", "--secret-file", str(tmp_path / "ga")])
    assert code == 1
    assert not (tmp_path / "ga").exists()


def test_setup_confirm_spends_the_code_it_was_given(tmp_path: Path) -> None:
    """The confirmation code must not work again at login: its step goes in the file."""
    path = tmp_path / "ga"
    answers: list[str] = []

    def ask(prompt: str) -> str:
        secret = uri_params(out.getvalue())[1]["secret"]
        answers.append(oathtool(secret))
        return answers[-1]

    out = io.StringIO()
    code = cli.main(["setup", "--quiet", "--secret-file", str(path)], cli.Console(out, out, ask))
    assert code == 0, out.getvalue()
    config = gafile.read(path)
    assert len(config.used_steps) == 1
    assert abs(config.used_steps[0] - int(time.time()) // 30) <= 1


def test_setup_confirm_counter_based_moves_the_counter_past_the_code(tmp_path: Path) -> None:
    path = tmp_path / "ga"
    out = io.StringIO()

    def ask(prompt: str) -> str:
        # The app was pressed twice: counter 2. Inside the window of 3 (1, 2, 3).
        return oathtool(uri_params(out.getvalue())[1]["secret"], counter=2)

    code = cli.main(
        ["setup", "--counter", "--quiet", "--secret-file", str(path)], cli.Console(out, out, ask)
    )
    assert code == 0, out.getvalue()
    assert gafile.read(path).hotp_counter == 3


def test_setup_into_a_missing_directory(tmp_path: Path) -> None:
    code, _out, err = run(
        ["setup", "--no-confirm", "--quiet", "--secret-file", str(tmp_path / "no" / "ga")]
    )
    assert code == 3
    assert "does not exist" in err


@needs_root
def test_setup_on_a_full_disk_changes_nothing(tmp_path: Path) -> None:
    """A real full file system: a 16 KiB tmpfs, filled up."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        [
            require_tool("mount"),
            "-t",
            "tmpfs",
            "-o",
            "size=16k,mode=0700",
            "keyfob-test",
            str(mount_point),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        path = mount_point / "ga"
        assert run(["setup", "--no-confirm", "--quiet", "--secret-file", str(path)])[0] == 0
        before = path.read_text()
        filler = os.open(mount_point / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for _ in range(1000):  # bounded: 4 MB at most, the fs holds 16 KiB
                os.write(filler, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(filler)
        code, _out, err = run(
            ["setup", "--no-confirm", "--quiet", "--force", "--secret-file", str(path)]
        )
        assert code == 3
        assert "no space left" in err
        assert path.read_text() == before  # the old file is intact
        assert sorted(os.listdir(mount_point)) == ["filler", "ga"]  # no temporary file left
    finally:
        subprocess.run(
            [require_tool("umount"), str(mount_point)], capture_output=True, timeout=TIMEOUT
        )


# -- status --------------------------------------------------------------------------------


def test_status_shows_the_settings_never_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "ga"
    run(["setup", "--no-confirm", "--quiet", "--secret-file", str(path)])
    code, out, _err = run(["status", "--secret-file", str(path)])
    assert code == 0
    assert "time-based (TOTP), a new code every 30 s" in out
    assert "Window: 3 codes" in out
    assert "Same code accepted twice: no" in out
    assert "Rate limit: 3 logins per 30 s" in out
    assert "Emergency codes left: 5" in out
    config = gafile.read(path)
    secret = path.read_text().splitlines()[0]
    assert secret not in out.replace(" ", "")
    assert not any(code in out for code in config.scratch_codes)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["-t", "-d", "-r", "3", "-R", "30", "-w", "3"],
            ["time-based (TOTP)", "Same code accepted twice: no", "3 logins per 30 s"],
        ),
        (["-t", "-D", "-u", "-w", "5", "-S", "60", "-e", "2"], ["every 60 s", "twice: yes", "off"]),
        (["-c", "-u", "-w", "3"], ["counter-based (HOTP), next counter 1", "Rate limit: off"]),
    ],
    ids=["totp-safe", "totp-provider-style", "hotp"],
)
def test_status_reads_files_from_googles_own_cli(
    tmp_path: Path, flags: list[str], expected: list[str]
) -> None:
    tool = require_tool("google-authenticator")
    path = tmp_path / "ga"
    made = subprocess.run(
        [tool, *flags, "-f", "-C", "-q", "-s", str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    code, out, err = run(["status", "--secret-file", str(path)])
    assert (code, err) == (0, "")
    for text in expected:
        assert text in out
    emergency = 2 if "-e" in flags else 5
    assert f"Emergency codes left: {emergency}" in out
    # And we would write the same file back.
    assert gafile.serialise(gafile.read(path)) == path.read_text()


def test_status_missing_file(tmp_path: Path) -> None:
    code, _out, err = run(["status", "--secret-file", str(tmp_path / "nope")])
    assert code == 3
    assert "does not exist" in err


def test_status_bad_permissions(tmp_path: Path) -> None:
    path = tmp_path / "ga"
    run(["setup", "--no-confirm", "--quiet", "--secret-file", str(path)])
    path.chmod(0o644)
    code, _out, err = run(["status", "--secret-file", str(path)])
    assert code == 3
    assert "mode 0644" in err
    assert f"chmod 400 {path}" in err


@needs_root
def test_status_file_owned_by_someone_else(tmp_path: Path) -> None:
    path = tmp_path / "ga"
    run(["setup", "--no-confirm", "--quiet", "--secret-file", str(path)])
    os.chown(path, 65534, 65534)
    code, _out, err = run(["status", "--secret-file", str(path)])
    assert code == 3
    assert "owner uid 65534" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("hello world\n", "does not start with a valid secret"),
        ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\nnonsense\n", "not a valid google_authenticator"),
        ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\xe9\n", "not ASCII"),
    ],
)
def test_status_bad_content(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "ga"
    path.write_text(content, encoding="latin-1")
    path.chmod(0o400)
    code, _out, err = run(["status", "--secret-file", str(path)])
    assert code == 3
    assert message in err


# -- disable -------------------------------------------------------------------------------


def test_disable_asks_first(tmp_path: Path) -> None:
    path = tmp_path / "ga"
    run(["setup", "--no-confirm", "--quiet", "--secret-file", str(path)])
    code, out, _err = run(["disable", "--secret-file", str(path)], stdin="n\n")
    assert code == 1
    assert "nothing was changed" in out
    assert path.exists()
    code, _out, _err = run(["disable", "--secret-file", str(path)])  # end of input: no
    assert (code, path.exists()) == (1, True)
    code, out, _err = run(["disable", "--secret-file", str(path)], stdin="y\n")
    assert code == 0
    assert not path.exists()


def test_disable_yes_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "ga"
    run(["setup", "--no-confirm", "--quiet", "--secret-file", str(path)])
    assert run(["disable", "--yes", "--secret-file", str(path)])[0] == 0
    assert run(["disable", "--yes", "--secret-file", str(path)])[0] == 3


# -- help, languages, dependencies ---------------------------------------------------------


def test_help_documents_the_exit_codes() -> None:
    done = run_process(["--help"], env={"COLUMNS": "200"})
    assert done.returncode == 0
    assert "exit codes: 0 success; 1 refused or cancelled; 2 usage error" in done.stdout
    for number in "01234":
        assert f"{number} " in done.stdout
    assert "Exit codes:" in (cli.__doc__ or "")


@pytest.mark.parametrize(
    "env",
    [{"LANGUAGE": "fr"}, {"LANG": "fr_FR.UTF-8"}, {"LC_ALL": "fr_FR.UTF-8"}],
    ids=["LANGUAGE", "LANG", "LC_ALL"],
)
def test_messages_in_french(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "ga"
    run(["setup", "--no-confirm", "--quiet", "--secret-file", str(path)])
    done = run_process(["status", "--secret-file", str(path)], env=env)
    assert done.returncode == 0, done.stderr
    assert "Codes de secours restants : 5" in done.stdout
    assert "Même code accepté deux fois : non" in done.stdout
    path.chmod(0o640)
    done = run_process(["status", "--secret-file", str(path)], env=env)
    assert done.returncode == 3
    assert "pam_google_authenticator le refuse" in done.stderr
    done = run_process(["setup", "--window", "0"], env=env)
    assert done.returncode == 2
    assert "la fenêtre doit être un nombre de 1 à 21" in done.stderr


def _messages_in_source() -> set[str]:
    found = set()
    trees = [ast.parse(path.read_text()) for path in sorted(SSH_PACKAGE.glob("*.py"))]
    for node in (node for tree in trees for node in ast.walk(tree)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "_"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def _po_entries(po: Path) -> dict[str, str]:
    """A minimal .po reader: msgid/msgstr with continuation lines (enough for our file)."""
    entries: dict[str, str] = {}
    key: str | None = None
    current: dict[str, str] = {}
    for line in [*po.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith(("msgid ", "msgstr ")):
            key, _sep, rest = line.partition(" ")
            current[key] = ast.literal_eval(rest)
        elif line.startswith('"') and key:
            current[key] += ast.literal_eval(line)
        elif not line.strip() and current:
            entries[current["msgid"]] = current["msgstr"]
            current, key = {}, None
    return entries


def test_every_message_has_a_french_translation_and_the_mo_is_up_to_date() -> None:
    directory = SSH_PACKAGE / "locale" / "fr" / "LC_MESSAGES"
    po = _po_entries(directory / "keyfob-ssh.po")
    messages = _messages_in_source() | {"error"}
    missing = sorted(m for m in messages if not po.get(m))
    assert not missing, f"untranslated: {missing}"
    with open(directory / "keyfob-ssh.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = [m for m in messages if compiled.gettext(m) != po[m]]
    assert not stale, f"recompile: msgfmt -o keyfob-ssh.mo keyfob-ssh.po ({stale})"
    for message, french in po.items():  # same placeholders on both sides
        assert sorted(re.findall(r"\{[^}]*\}|%\(\w+\)s", message)) == sorted(
            re.findall(r"\{[^}]*\}|%\(\w+\)s", french)
        ), message


def test_keyfob_ssh_never_imports_django(tmp_path: Path) -> None:
    script = f"""
import sys
from keyfob.ssh import cli
path = {str(tmp_path / "ga")!r}
assert cli.main(["setup", "--no-confirm", "--quiet", "--secret-file", path]) == 0
assert cli.main(["status", "--secret-file", path]) == 0
cli.main(["server-config", "--sshd", "/nonexistent"])
loaded = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
assert not loaded, loaded
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr


# -- server-config -------------------------------------------------------------------------


@pytest.fixture
def sshd_ready() -> Iterator[str]:
    """sshd -t wants its privilege separation directory; create it if missing, then remove."""
    sshd = require_tool("sshd")
    if os.geteuid() != 0:
        pytest.skip("sshd -t reads the host keys: needs root")
    if serverconfig.find_module() is None:
        pytest.skip("pam_google_authenticator.so is missing (libpam-google-authenticator)")
    created = not os.path.isdir("/run/sshd")
    if created:
        os.makedirs("/run/sshd", mode=0o755)
    try:
        yield sshd
    finally:
        if created:
            with contextlib.suppress(OSError):
                os.rmdir("/run/sshd")


def test_server_config_prints_a_configuration_sshd_accepts(sshd_ready: str) -> None:
    code, out, err = run(["server-config"])
    assert (code, err) == (0, "")
    assert "AuthenticationMethods publickey,keyboard-interactive\n" in out
    assert "KbdInteractiveAuthentication yes\n" in out
    assert "UsePAM yes\n" in out
    assert "\nauth required pam_google_authenticator.so\n" in out
    assert "nullok" not in out
    code, out, _err = run(["server-config", "--nullok"])
    assert "auth required pam_google_authenticator.so nullok" in out


@pytest.mark.parametrize("methods", ["publickey", "publickey,bogus", "", "password"])
def test_server_config_bad_methods(methods: str) -> None:
    code, _out, err = run(["server-config", "--methods", methods])
    assert code == 2
    assert "is not valid" in err


@pytest.mark.parametrize(
    "methods",
    [
        "keyboard-interactive,publickey",
        "publickey,keyboard-interactive,password",
        "keyboard-interactive:pam,publickey",
        "publickey,keyboard-interactive keyboard-interactive,publickey",
    ],
)
def test_server_config_refuses_the_code_before_the_key(methods: str) -> None:
    """Issue 15: the code would be asked before the key, so anyone who reaches sshd could
    spend a customer's tries. Seen failing before the fix: exit 0, the list written."""
    code, out, err = run(["server-config", "--methods", methods])
    assert (code, out) == (2, "")
    assert "keyboard-interactive must come last in each list" in err
    french = run_process(["server-config", "--methods", methods], env={"LANG": "fr_FR.UTF-8"})
    assert french.returncode == 2
    assert "keyboard-interactive doit venir en dernier" in french.stderr


def test_server_config_module_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serverconfig, "find_module", lambda: None)
    code, _out, err = run(["server-config"])
    assert code == 4
    assert "apt-get install libpam-google-authenticator" in err


def test_server_config_write_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    if serverconfig.find_module() is None:
        pytest.skip("pam_google_authenticator.so is missing (libpam-google-authenticator)")
    code, _out, err = run(["server-config", "--write"])
    assert (code, err.strip()) == (4, "keyfob-ssh: --write needs root")


def test_server_config_write(tmp_path: Path, sshd_ready: str) -> None:
    drop_in = tmp_path / "50-keyfob-2fa.conf"
    pam = tmp_path / "sshd.pam"
    debian_pam = Path("/etc/pam.d/sshd")
    pam.write_text(
        debian_pam.read_text()
        if debian_pam.exists()
        else "@include common-auth\naccount required pam_nologin.so\n"
    )
    argv = ["server-config", "--write", "--drop-in", str(drop_in), "--pam-file", str(pam)]
    code, out, _err = run(argv)
    assert code == 0
    # /etc/ssh/sshd_config does not include a drop-in under tmp_path: sshd -T says so.
    assert "Warning: sshd -T does not show authenticationmethods" in out
    assert run(argv)[0] == 0  # twice: still one line
    text = pam.read_text()
    assert text.count("pam_google_authenticator.so") == 1
    assert re.search(r"^# @include common-auth", text, re.M)
    assert not re.search(r"^@include common-auth", text, re.M)
    # The written drop-in, in front of the real configuration, passes sshd -t.
    config = tmp_path / "sshd_config"
    config.write_text(f"Include {drop_in}\nInclude /etc/ssh/sshd_config\n")
    checked = subprocess.run(
        [sshd_ready, "-t", "-f", str(config)], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert checked.returncode == 0, checked.stderr
    assert serverconfig.not_in_effect(serverconfig.DEFAULT_METHODS, sshd_config=config) == []
    # Password then code (no key): common-auth comes back, the code line after it.
    assert run([*argv, "--methods", "keyboard-interactive"])[0] == 0
    lines = pam.read_text().splitlines()
    index = lines.index("@include common-auth")
    assert lines[index + 1].startswith("auth required pam_google_authenticator.so")


def test_server_config_rejected_by_sshd_writes_nothing(tmp_path: Path, sshd_ready: str) -> None:
    bad = tmp_path / "sshd_config"
    bad.write_text("ThisIsNotAnOption yes\n")
    drop_in = tmp_path / "drop-in.conf"
    pam = tmp_path / "pam"
    pam.write_text("@include common-auth\n")
    code, _out, err = run(
        [
            *("server-config", "--write", "--sshd-config", str(bad)),
            *("--drop-in", str(drop_in), "--pam-file", str(pam)),
        ]
    )
    assert code == 4
    assert "sshd -t rejects" in err
    assert "ThisIsNotAnOption" in err
    assert not drop_in.exists()
    assert pam.read_text() == "@include common-auth\n"


def test_server_config_sshd_missing(tmp_path: Path) -> None:
    if serverconfig.find_module() is None:
        pytest.skip("pam_google_authenticator.so is missing (libpam-google-authenticator)")
    code, _out, err = run(["server-config", "--sshd", str(tmp_path / "sshd")])
    assert code == 4
    assert "apt-get install openssh-server" in err


# -- a person at a terminal ----------------------------------------------------------------


def test_setup_in_a_terminal_confirms_a_code(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    path = tmp_path / "ga"
    env = {k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LANG")}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "keyfob.ssh.cli", "setup", "--secret-file", str(path)],
        env={**env, "TERM": "xterm", "COLUMNS": "120", "LINES": "60"},
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(60, 120),
    )
    transcript = io.StringIO()
    child.logfile_read = transcript
    try:
        child.expect(r"Or enter this key by hand: ([A-Z2-7 ]+)\r\n")
        secret = child.match.group(1).replace(" ", "")
        child.expect_exact("Code shown by your app: ")
        child.sendline("000000" if oathtool(secret) != "000000" else "111111")
        child.expect_exact("That code is not right, try again.")
        child.expect_exact("Code shown by your app: ")
        child.sendline(oathtool(secret))
        child.expect_exact("Two-factor authentication is on")
        child.expect_exact("Emergency codes")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    config = gafile.read(path)
    assert config.secret == b32decode_secret(secret)
    assert len(config.scratch_codes) == 5
    assert all(f"  {code}" in transcript.getvalue() for code in config.scratch_codes)
    assert "otpauth://totp/" in transcript.getvalue()
