"""SSH certificates (issue 26) with the real parts: a private sshd configured by
`keyfob-ssh server-config --certificates`'s own builder (TrustedUserCAKeys, RevokedKeys, and
`keyfob-ssh principals` as AuthorizedPrincipalsCommand over HTTPS to a live `keyfob
serve`), certificates signed by Keyfob's flow, the CA files fetched by `keyfob-ssh
ca-sync`, and the real OpenSSH client in batch mode (a prompt would fail the login).

Most tests issue certificates by calling the flow in the server's database; the last ones
run ``keyfob-ssh login`` itself, with the device approval in headless Chromium.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keyfob.ssh import certificates
from tests.conftest import PASSWORD, free_port, require_tool
from tests.site.conftest import keyfob
from tests.ssh.central.conftest import EMAIL, SERVER_NAME, Account, Central
from tests.ssh.harness import TIMEOUT, Sshd, running_sshd

COMMAND = Path(sys.executable).parent / "keyfob-ssh"

ISSUE = """
from datetime import timedelta
from keyfob.accounts.models import User
from keyfob.api import sshca
from keyfob.audit.events import Context
issued = sshca.issue_certificate(
    User.objects.get(email={email!r}), {line!r}, Context(address="127.0.0.1"),
    requested_from="127.0.0.1", lifetime={lifetime}, factors={factors!r},
)
result = [issued.certificate, str(issued.row.serial)]
"""


@dataclass
class Certs:
    central: Central
    sshd: Sshd
    ca_file: Path
    krl_file: Path
    key: Path  # the user's private key (ssh-keygen); its certificate goes beside it

    def sync(self) -> None:
        """`keyfob-ssh ca-sync`, as the server's cron runs it."""
        done = subprocess.run(
            [
                str(COMMAND), "ca-sync", "--url", self.central.server.url,
                "--token-file", str(self.central.token_file),
                "--cafile", str(self.central.server.ca),
                "--ca-file", str(self.ca_file), "--krl-file", str(self.krl_file),
            ],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def issue(
        self, email: str = EMAIL, lifetime: str = "None", factors: tuple[str, ...] = ()
    ) -> tuple[str, str]:
        """A certificate for ``email``, as an approval by a session that proved ``factors``
        (accounts' Factor values; none: the account's principal only) would get."""
        line = self.key.with_suffix(".pub").read_text()
        made = self.central.django(
            ISSUE.format(email=email, line=line, lifetime=lifetime, factors=factors)
        )
        assert isinstance(made, list)
        return str(made[0]), str(made[1])

    def ssh(self, certificate: str) -> subprocess.CompletedProcess[str]:
        """The real OpenSSH client with the key and ``certificate``, never prompting."""
        cert = self.key.parent / "id-cert.pub"
        cert.write_text(certificate + "\n")
        return subprocess.run(
            [
                require_tool("ssh"), "-F", "/dev/null", "-p", str(self.sshd.port),
                "-i", str(self.key), "-o", f"CertificateFile={cert}",
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "PreferredAuthentications=publickey,keyboard-interactive",
                f"{self.central.user.name}@127.0.0.1", "id -un",
            ],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip

    def keyfob(self, *args: str) -> str:
        done = keyfob(self.central.env, *args)
        assert done.returncode == 0, done.stderr
        return str(done.stdout)


@pytest.fixture(scope="module")
def certs(central: Central) -> Iterator[Certs]:
    if not COMMAND.exists():
        pytest.skip("keyfob-ssh is not installed beside this Python")
    root = central.token_file.parent / "certs"
    root.mkdir(mode=0o755)
    key = root / "id"
    subprocess.run(
        [require_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        check=True, capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    # sshd runs an AuthorizedPrincipalsCommand only from a path that root owns all the way
    # up, none of it writable by others ("bad ownership or modes for directory /tmp" for a
    # checkout under /tmp): installed as an operator installs keyfob-ssh (/usr/local/bin),
    # a copy of this checkout's entry point in a directory of its own.
    bindir = Path(tempfile.mkdtemp(prefix="keyfob-ssh-bin-", dir="/run"))
    bindir.chmod(0o755)
    command = bindir / "keyfob-ssh"
    shutil.copy2(COMMAND, command)
    command.chmod(0o755)
    config = certificates.build_certificates(
        central.server.url,
        central.token_file,
        command,
        cafile=central.server.ca,
        ca_file=root / "ca.pub",
        krl_file=root / "revoked.krl",
    )
    made = Certs(central, central.sshd, root / "ca.pub", root / "revoked.krl", key)
    made.sync()
    try:
        with running_sshd(root, central.user, "auth required pam_deny.so", config.drop_in) as sshd:
            made.sshd = sshd
            yield made
    finally:
        shutil.rmtree(bindir, ignore_errors=True)


@pytest.fixture
def ready(certs: Certs, account: Account) -> Certs:
    """The login linked, 2FA on (``account``), the CA files fresh."""
    links = certs.keyfob("ssh-links", "--server", SERVER_NAME)
    if certs.central.user.name not in links:
        certs.keyfob("ssh-link", EMAIL, certs.central.user.name, "--server", SERVER_NAME)
    certs.sync()
    return certs


def refused(done: subprocess.CompletedProcess[str]) -> bool:
    return done.returncode == 255 and "Permission denied" in done.stderr


def test_a_certificate_logs_in_with_no_prompt(ready: Certs) -> None:
    certificate, serial = ready.issue()
    done = ready.ssh(certificate)
    assert done.returncode == 0, done.stderr + ready.sshd.log_text()
    assert done.stdout.strip() == ready.central.user.name
    log = ready.sshd.log_text()
    assert f"serial {serial}" in log and "Accepted publickey" in log


def test_a_certificate_of_another_account_is_refused(ready: Certs) -> None:
    ready.central.django(
        "from tests.conftest import enrol, make_user\n"
        "from keyfob.accounts.models import User\n"
        "if not User.objects.filter(email='bob@example.com').exists():\n"
        "    enrol(make_user('bob@example.com'))\n"
    )
    certificate, _serial = ready.issue("bob@example.com")
    assert refused(ready.ssh(certificate))


def test_an_expired_certificate_is_refused(ready: Certs) -> None:
    certificate, _serial = ready.issue(lifetime="timedelta(seconds=-1)")
    assert refused(ready.ssh(certificate))


def test_unlinking_the_login_stops_the_next_login(ready: Certs) -> None:
    certificate, _serial = ready.issue()
    assert ready.ssh(certificate).returncode == 0
    ready.keyfob("ssh-unlink", ready.central.user.name, "--server", SERVER_NAME)
    assert refused(ready.ssh(certificate))


def test_support_turning_2fa_off_stops_the_next_login(ready: Certs) -> None:
    certificate, _serial = ready.issue()
    assert ready.ssh(certificate).returncode == 0
    ready.central.django(
        "from keyfob.accounts.models import User\n"
        "from keyfob.audit.events import Context\n"
        "from keyfob.twofactor import flows\n"
        f"flows.disable_by_support(User.objects.get(email={EMAIL!r}), Context())\n"
    )
    assert refused(ready.ssh(certificate))


def test_a_revoked_certificate_is_refused_once_servers_fetch_the_list(ready: Certs) -> None:
    certificate, serial = ready.issue()
    assert ready.ssh(certificate).returncode == 0
    ready.keyfob("ssh-ca", "revoke", serial)
    ready.sync()
    assert refused(ready.ssh(certificate))
    assert "revoked" in ready.sshd.log_text().lower()
    fresh, _serial = ready.issue()
    assert ready.ssh(fresh).returncode == 0


def test_a_certificate_of_another_ca_is_refused(ready: Certs) -> None:
    other = ready.key.parent / "other_ca"
    if not other.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
            check=True, capture_output=True, timeout=TIMEOUT,
        )  # fmt: skip
    genuine, _serial = ready.issue()
    principal = genuine.split()[-1].rsplit("-", 1)[0]  # the key id: keyfob-<id>-<serial>
    subprocess.run(
        [
            "ssh-keygen", "-q", "-s", str(other), "-I", "forged", "-n", principal,
            "-V", "-5m:+1h", str(ready.key.with_suffix(".pub")),
        ],
        check=True, capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    forged = (ready.key.parent / "id-cert.pub").read_text().strip()
    assert principal in subprocess.run(
        ["ssh-keygen", "-L", "-f", str(ready.key.parent / "id-cert.pub")],
        capture_output=True, text=True, timeout=TIMEOUT, check=True,
    ).stdout  # fmt: skip
    assert refused(ready.ssh(forged))


def test_a_certificate_of_a_key_rotated_away_is_refused(ready: Certs) -> None:
    old, _serial = ready.issue()
    ready.keyfob("ssh-ca", "rotate")  # the next key, published
    ready.sync()
    assert ready.ssh(old).returncode == 0  # still signed by the current key
    ready.keyfob("ssh-ca", "rotate")  # the next key signs; the old one is retired
    ready.sync()
    assert ready.ssh(old).returncode == 0  # published until its certificates expire
    ready.keyfob("ssh-ca", "forget-old")
    ready.sync()
    assert refused(ready.ssh(old))
    new, _serial = ready.issue()
    assert ready.ssh(new).returncode == 0


def test_the_principals_command_fails_closed(ready: Certs) -> None:
    base = [str(COMMAND), "principals", "--token-file", str(ready.central.token_file)]
    base += ["--cafile", str(ready.central.server.ca)]
    done = subprocess.run(
        [*base, "--url", ready.central.server.url, ready.central.user.name],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("keyfob-"), done.stderr
    for url, login in (
        (f"https://127.0.0.1:{free_port()}", ready.central.user.name),  # nobody there
        ("http://127.0.0.1:1", ready.central.user.name),
        (ready.central.server.url, "no such/login"),
        (ready.central.server.url, "-x"),
    ):
        done = subprocess.run(
            [*base, "--url", url, login],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        assert done.returncode != 0 and done.stdout == "", (url, login)
        assert done.stderr


def test_revoking_the_server_token_stops_the_next_login(ready: Certs) -> None:
    certificate, _serial = ready.issue()
    assert ready.ssh(certificate).returncode == 0
    ready.keyfob("server-token", "revoke", SERVER_NAME)
    try:
        assert refused(ready.ssh(certificate))
    finally:  # a new token for the same server, in the same file
        made = keyfob(ready.central.env, "server-token", "create", SERVER_NAME + "-2")
        assert made.returncode == 0
        ready.central.django(
            "from keyfob.api.models import ServerToken\n"
            f"ServerToken.objects.filter(name={SERVER_NAME!r}).delete()\n"
            f"ServerToken.objects.filter(name={SERVER_NAME + '-2'!r})"
            f".update(name={SERVER_NAME!r})\n"
        )
        ready.central.token_file.write_text(made.stdout.strip() + "\n")


# --- a team member's own certificate (issue 27) --------------------------------------------

MEMBER = "dev@example.com"
CODE_APPROVAL = ("password", "code")
KEY_APPROVAL = ("password", "security_key")

GRANT = """
from keyfob.accounts.models import User
from keyfob.core import clock
from keyfob.teams.models import Grant
from tests.conftest import enrol, make_user
member = User.objects.filter(email={member!r}).first()
if member is None:
    member = make_user({member!r})
    enrol(member)
Grant.objects.filter(member=member, ended_at__isnull=True).update(ended_at=clock.now())
grant = Grant.objects.create(
    owner=User.objects.get(email={owner!r}), member=member, rule={rule!r},
    rights=["technical"], logins=[[{login!r}, {server!r}]],
)
result = grant.pk
"""

# What the teams flows do: save the change and send the signal, in one transaction.
CHANGE = """
from django.db import transaction
from keyfob.core import clock
from keyfob.teams import signals
from keyfob.teams.models import Grant
with transaction.atomic():
    grant = Grant.objects.select_for_update().get(pk={pk})
    if {end}:
        grant.ended_at = clock.now()
        grant.save()
        signals.grant_ended.send(sender=Grant, grant=grant)
    else:
        grant.rule = {rule!r}
        grant.save()
        signals.grant_changed.send(sender=Grant, grant=grant)
"""


def grant_login(ready: Certs, rule: str) -> int:
    """A live grant of the linked login to MEMBER (2FA on) with ``rule``; returns its id."""
    made = ready.central.django(
        GRANT.format(
            member=MEMBER, owner=EMAIL, rule=rule, login=ready.central.user.name,
            server=SERVER_NAME,
        )
    )  # fmt: skip
    assert isinstance(made, int)
    return made


def test_a_member_logs_in_with_their_own_certificate_once_the_rule_is_met(ready: Certs) -> None:
    pk = grant_login(ready, "key")
    from_code, _serial = ready.issue(MEMBER, factors=CODE_APPROVAL)
    assert refused(ready.ssh(from_code))  # the grant waits for a key
    from_key, serial = ready.issue(MEMBER, factors=KEY_APPROVAL)
    done = ready.ssh(from_key)
    assert done.returncode == 0, done.stderr + ready.sshd.log_text()
    assert done.stdout.strip() == ready.central.user.name
    assert f"serial {serial}" in ready.sshd.log_text()
    # The owner lowers the rule to 2FA: the code approval's certificate opens it now.
    ready.central.django(CHANGE.format(pk=pk, end=False, rule="2fa"))
    assert ready.ssh(from_code).returncode == 0
    # Removed: the next login is refused at once, with certificates still valid for hours.
    ready.central.django(CHANGE.format(pk=pk, end=True, rule=""))
    assert refused(ready.ssh(from_key))
    assert refused(ready.ssh(from_code))
    # The owner's own certificate is not affected.
    own, _serial = ready.issue()
    assert ready.ssh(own).returncode == 0


def test_a_member_without_a_grant_for_the_login_is_refused(ready: Certs) -> None:
    pk = grant_login(ready, "none")
    certificate, _serial = ready.issue(MEMBER, factors=KEY_APPROVAL)
    assert ready.ssh(certificate).returncode == 0
    ready.central.django(
        "from keyfob.teams.models import Grant\n"
        f"Grant.objects.filter(pk={pk}).update(logins=[['someone-else', {SERVER_NAME!r}]])\n"
    )
    assert refused(ready.ssh(certificate))
    ready.central.django(CHANGE.format(pk=pk, end=True, rule=""))


# --- keyfob-ssh login end to end (issue 26): the command, the approval in Chromium, ssh ---


def totp(secret: str) -> str:
    done = subprocess.run(
        [require_tool("oathtool"), "--totp", "-b", secret],
        capture_output=True, text=True, timeout=TIMEOUT, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def start_login(ready: Certs, key: Path, agent: Path | None = None) -> subprocess.Popen[str]:
    """``keyfob-ssh login``; with ``agent`` (an ssh-agent's socket), as in a session where
    one runs, else ``--no-agent``."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(key.parent)}
    if agent is not None:
        env["SSH_AUTH_SOCK"] = str(agent)
    return subprocess.Popen(
        [
            str(COMMAND), "login", "--portal", ready.central.server.url,
            "--cafile", str(ready.central.server.ca), "--key", str(key), "--no-browser",
            *([] if agent is not None else ["--no-agent"]),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def read_link(process: subprocess.Popen[str]) -> str:
    """The verification_uri_complete the command prints ("or open URL")."""
    assert process.stdout is not None
    deadline = time.monotonic() + TIMEOUT
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(r"or open (https://\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError(
        "no link printed: " + "".join(seen) + (process.stderr.read() if process.stderr else "")
    )


@pytest.fixture
def chromium_page(browser: Any) -> Any:
    context = browser.new_context(locale="en-GB", ignore_https_errors=True)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def sign_in(page: Any, base: str, account: Account) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r"/login/code/$"))
    page.get_by_label("Authentication code").fill(totp(account.secret))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r"/account/security/$"))


def run_login(
    ready: Certs,
    page: Any,
    answer: str,
    *,
    agent: Path | None = None,
    on_page: Callable[[], None] | None = None,
) -> tuple[int, str, str]:
    """Run ``keyfob-ssh login`` and answer its device page in the signed-in ``page`` (the
    link it printed, Continue, then the ``answer`` button; ``on_page`` looks at the page
    first). Returns the command's exit code, output and errors."""
    process = start_login(ready, ready.key, agent=agent)
    try:
        link = read_link(process)
        assert link.startswith(ready.central.server.url + "/")
        page.goto(link)
        page.get_by_role("button", name="Continue").click()
        if on_page is not None:
            on_page()
        page.get_by_role("button", name=answer).click()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, out, err


@pytest.mark.browser
def test_login_approve_then_ssh_with_no_prompt(
    ready: Certs, account: Account, chromium_page: Any
) -> None:
    key = ready.key
    cert = key.parent / (key.name + "-cert.pub")
    cert.unlink(missing_ok=True)
    sign_in(chromium_page, ready.central.server.url, account)

    def what_is_approved() -> None:
        chromium_page.get_by_role(
            "heading", name="Let keyfob-ssh on a device sign you in?"
        ).wait_for()
        detail = chromium_page.locator("#ssh-certificate-logins").inner_text()
        assert ready.central.user.name in detail and "web1" in detail
        assert "8 hours" in chromium_page.locator("#ssh-certificate-detail").inner_text()

    code, out, err = run_login(ready, chromium_page, "Approve", on_page=what_is_approved)
    chromium_page.get_by_role("heading", name="Device approved").wait_for()
    assert code == 0, out + err
    assert "Certificate written to" in out and cert.exists()
    done = ready.ssh(cert.read_text().strip())
    assert done.returncode == 0, done.stderr + ready.sshd.log_text()
    assert done.stdout.strip() == ready.central.user.name


@pytest.mark.browser
def test_login_puts_the_certificate_in_ssh_agent_for_its_lifetime(
    ready: Certs, account: Account, chromium_page: Any
) -> None:
    """With an ssh-agent running, the key and its certificate are added to it (``ssh-add
    -t`` the certificate's lifetime): plain ``ssh`` through the agent, no file named."""
    key = ready.key
    (key.parent / (key.name + "-cert.pub")).unlink(missing_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="kfagent-", dir="/tmp"))  # a short socket path
    sock = folder / "agent.sock"
    agent = subprocess.Popen([require_tool("ssh-agent"), "-D", "-a", str(sock)])
    try:
        deadline = time.monotonic() + TIMEOUT
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        sign_in(chromium_page, ready.central.server.url, account)
        code, out, err = run_login(ready, chromium_page, "Approve", agent=sock)
        assert code == 0, out + err
        assert "Added to ssh-agent until the certificate expires." in out, out + err
        env = {"PATH": "/usr/bin:/bin", "SSH_AUTH_SOCK": str(sock)}
        listed = subprocess.run(
            [require_tool("ssh-add"), "-l"], capture_output=True, text=True, env=env,
            timeout=TIMEOUT, check=False,
        )  # fmt: skip
        assert "ED25519-CERT" in listed.stdout, listed.stdout + listed.stderr
        done = subprocess.run(
            [
                require_tool("ssh"), "-F", "/dev/null", "-p", str(ready.sshd.port),
                "-o", f"IdentityAgent={sock}", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "PreferredAuthentications=publickey",
                f"{ready.central.user.name}@127.0.0.1", "id -un",
            ],
            capture_output=True, text=True, timeout=TIMEOUT, check=False, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + ready.sshd.log_text()
        assert done.stdout.strip() == ready.central.user.name
    finally:
        agent.terminate()
        agent.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.browser
def test_deny_gives_no_certificate(ready: Certs, account: Account, chromium_page: Any) -> None:
    key = ready.key
    cert = key.parent / (key.name + "-cert.pub")
    cert.unlink(missing_ok=True)
    sign_in(chromium_page, ready.central.server.url, account)
    code, out, err = run_login(ready, chromium_page, "Deny access")
    assert code == 1, out + err
    assert "denied" in err and not cert.exists()


@pytest.mark.parametrize(
    "portal",
    ["http://example.com", "ftp://127.0.0.1", "https://user@host", "https://h/?x=1", "not a url"],
)
def test_junk_portal_is_a_usage_error(tmp_path: Path, portal: str) -> None:
    key = tmp_path / "id"
    subprocess.run(
        [require_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        check=True, capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    done = subprocess.run(
        [str(COMMAND), "login", "--portal", portal, "--key", str(key), "--no-browser"],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "--portal" in done.stderr


def test_missing_or_junk_key_is_a_file_error(tmp_path: Path) -> None:
    missing = subprocess.run(
        [str(COMMAND), "login", "--portal", "https://127.0.0.1:9", "--key", str(tmp_path / "nope")],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert missing.returncode == 3 and "ssh-keygen" in missing.stderr
    junk = tmp_path / "junk"
    (tmp_path / "junk.pub").write_bytes(b"\xff\xfe not a key")
    bad = subprocess.run(
        [str(COMMAND), "login", "--portal", "https://127.0.0.1:9", "--key", str(junk)],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert bad.returncode == 3, bad.stderr
