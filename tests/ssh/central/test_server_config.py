"""`keyfob-ssh server-config --central`: the module installed, the PAM line, the drop-in,
validated by the real `sshd -t`."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyfob.ssh import cli, serverconfig
from tests.conftest import require_tool

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: --write and sshd -t")


@pytest.fixture
def privsep() -> Iterator[None]:
    """sshd -t wants its privilege separation directory; made if missing, then removed."""
    created = not os.path.isdir("/run/sshd")
    if created:
        os.makedirs("/run/sshd", mode=0o755)
    yield
    if created:
        with contextlib.suppress(OSError):
            os.rmdir("/run/sshd")


@pytest.fixture
def server_files(tmp_path: Path, privsep: None) -> dict[str, Path]:
    keygen = require_tool("ssh-keygen")
    if serverconfig.find_module("pam_python.so") is None:
        pytest.skip("pam_python.so is missing (apt-get install libpam-python)")
    host_key = tmp_path / "host_key"
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True, timeout=30
    )
    sshd_config = tmp_path / "sshd_config"
    sshd_config.write_text(f"HostKey {host_key}\nKbdInteractiveAuthentication no\n")
    pam = tmp_path / "pam-sshd"
    pam.write_text("@include common-auth\naccount required pam_permit.so\n")
    token = tmp_path / "token"
    token.write_text("kfs_x\n")
    token.chmod(0o600)
    return {
        "sshd_config": sshd_config,
        "pam": pam,
        "token": token,
        "drop_in": tmp_path / "50-keyfob.conf",
        "modules": tmp_path / "lib" / "keyfob",
    }


def run(files: dict[str, Path], *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        [
            "server-config",
            "--central",
            "https://keyfob.example.com",
            "--token-file",
            str(files["token"]),
            "--sshd",
            require_tool("sshd"),
            "--sshd-config",
            str(files["sshd_config"]),
            "--pam-file",
            str(files["pam"]),
            "--drop-in",
            str(files["drop_in"]),
            "--module-dir",
            str(files["modules"]),
            *extra,
        ],
        cli.Console(out=out, err=err),
    )
    return code, out.getvalue(), err.getvalue()


def test_prints_then_writes_the_central_configuration(server_files: dict[str, Path]) -> None:
    code, out, err = run(server_files)
    assert code == 0, err
    module = server_files["modules"] / "pam_keyfob.py"
    line = (
        f"auth required pam_python.so {module} url=https://keyfob.example.com "
        f"token_file={server_files['token']}"
    )
    assert line in out and "AuthenticationMethods publickey,keyboard-interactive" in out
    assert not module.exists() and not server_files["drop_in"].exists()

    code, out, err = run(server_files, "--write", "--nullok")
    assert code == 0, err
    assert module.read_bytes() == serverconfig.module_source().read_bytes()
    assert module.stat().st_mode & 0o777 == 0o644
    pam = server_files["pam"].read_text().splitlines()
    assert pam[0].startswith("# @include common-auth")
    assert pam[1] == f"{line} nullok  {serverconfig.MARKER}"
    assert "keyfob ssh-link" in server_files["drop_in"].read_text()

    # Again, without nullok: the line is replaced, not added.
    assert run(server_files, "--write")[0] == 0
    lines = server_files["pam"].read_text().splitlines()
    assert [x for x in lines if "pam_python.so" in x] == [f"{line}  {serverconfig.MARKER}"]


def test_refuses_what_would_not_work(server_files: dict[str, Path]) -> None:
    server_files["token"].chmod(0o644)
    code, out, _err = run(server_files)
    assert code == 0 and "# Warning:" in out and "chmod 600" in out
    code, _out, err = run(server_files, "--write")
    assert code == cli.EXIT_FILE and "chmod 600" in err
    assert not server_files["drop_in"].exists()

    out, err = io.StringIO(), io.StringIO()
    for argv, expected in [
        (["--central", "http://keyfob.example.com", "--token-file", "/t"], "https://"),
        (["--central", "https://k.example.com/a b", "--token-file", "/t"], "https://"),
        (["--central", "https://keyfob.example.com"], "--token-file"),
        (["--token-file", "/etc/keyfob/token"], "--central"),
    ]:
        code = cli.main(["server-config", *argv], cli.Console(out=out, err=err))
        assert code == cli.EXIT_USAGE and expected in err.getvalue(), err.getvalue()


# -- --certificates (issue 26) -------------------------------------------------------------


def test_prints_the_certificates_configuration_accepted_by_sshd(
    server_files: dict[str, Path], tmp_path: Path
) -> None:
    ca, krl = tmp_path / "ca.pub", tmp_path / "revoked.krl"
    files = ["--ca-file", str(ca), "--krl-file", str(krl), "--command", "/usr/bin/keyfob-ssh"]
    code, out, err = run(server_files, "--certificates", *files)
    assert code == 0, err
    assert f"TrustedUserCAKeys {ca}" in out and f"RevokedKeys {krl}" in out
    assert (
        "AuthorizedPrincipalsCommand /usr/bin/keyfob-ssh principals --url "
        f"https://keyfob.example.com --token-file {server_files['token']} %u"
    ) in out
    assert "AuthorizedKeysFile none" in out and "AuthenticationMethods publickey\n" in out
    assert "pam_python.so" not in out  # no PAM path without the fallback

    code, out, err = run(server_files, "--certificates", "--fallback-pam", *files)
    assert code == 0, err
    assert "AuthenticationMethods publickey keyboard-interactive" in out
    assert "pam_python.so" in out
    assert not server_files["drop_in"].exists()

    # --write fetches the CA files first: Keyfob unreachable, nothing is written.
    code, _out, err = run(server_files, "--certificates", "--write", *files)
    assert code == cli.EXIT_SYSTEM and "nothing was written" in err
    assert not server_files["drop_in"].exists() and not ca.exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--certificates", "--nullok"], "--certificates"),
        (["--certificates", "--methods", "publickey,keyboard-interactive password"], "--methods"),
        (["--fallback-pam"], "--certificates"),
        (["--certificates", "--command", "relative/keyfob-ssh"], "https://"),
        (["--certificates", "--ca-file", "/etc/ssh/a b"], "https://"),
    ],
)
def test_certificates_junk_options_are_refused(
    server_files: dict[str, Path], extra: list[str], expected: str
) -> None:
    code, _out, err = run(server_files, *extra)
    assert code == cli.EXIT_USAGE and expected in err, err
    assert not server_files["drop_in"].exists()
