"""Real SSH logins checked by Keyfob: sshd + pam_python.so + pam_keyfob.py -> keyfob serve
over HTTPS; the portal's pages on the same server; codes from oathtool."""

from __future__ import annotations

import socket
import time

from tests.site.conftest import Browser
from tests.ssh.central.conftest import EMAIL, SERVER_NAME, Account, Central, events
from tests.ssh.harness import free_port, login, oathtool_totp, other_code, quiet_paramiko

pytestmark = [quiet_paramiko]

UNAVAILABLE = "The code cannot be checked right now, try again later."


def portal_code_step(central: Central, code: str) -> tuple[int, str]:
    """Password then ``code`` on the portal's sign-in pages: (status, page)."""
    browser = Browser()
    browser.password_step(central.server, EMAIL)  # type: ignore[arg-type]
    status, _headers, page = browser.post(central.server, "/login/code/", {"code": code})  # type: ignore[arg-type]
    return status, page


def test_right_code_logs_in_and_is_recorded(central: Central, account: Account) -> None:
    result = login(central.sshd, central.user, oathtool_totp(account.secret))
    assert result.ok, central.sshd.log_text()
    assert result.output.strip() == central.user.name
    assert result.prompts == ["Verification code: "]
    (event,) = events(central)
    assert event["kind"] == "signin_ok" and event["channel"] == "ssh"
    assert event["address"] == "127.0.0.1"  # the SSH server's, as Keyfob saw it
    assert event["user_agent"] == f"ssh:{SERVER_NAME}"
    assert event["detail"] == {
        "login": central.user.name,
        "server": SERVER_NAME,
        "factor": "code",
        "reported_address": "127.0.0.1",  # the SSH client's, sent by the module
        "authenticator": "Authenticator app",  # issue 17: which of the account's apps
    }


def test_wrong_code_is_refused_with_a_message_and_never_logged(
    central: Central, account: Account
) -> None:
    code = other_code(account.secret)
    result = login(central.sshd, central.user, code)
    assert not result.ok
    assert result.messages == ["That code is not right, or it was already used.\n"]
    assert [e["kind"] for e in events(central)] == ["code_wrong"]
    good = oathtool_totp(account.secret)
    assert login(central.sshd, central.user, good).ok
    for log in (central.sshd.log_text(), central.server.log.read_text()):
        assert code not in log and good not in log


def test_a_code_used_on_the_portal_is_refused_over_ssh_and_the_other_way_round(
    central: Central, account: Account
) -> None:
    now = time.time()
    if now % 30 > 25:  # two logins and a portal sign-in must fit in one step
        time.sleep(30 - now % 30 + 0.5)
    code = oathtool_totp(account.secret)
    status, _page = portal_code_step(central, code)
    assert status == 302
    refused = login(central.sshd, central.user, code)
    assert not refused.ok
    assert "already used" in refused.messages[0]

    later = oathtool_totp(account.secret, time.time() + 30)  # the next step: inside the window
    assert login(central.sshd, central.user, later).ok
    status, page = portal_code_step(central, later)
    assert status == 200 and "already been used" in page
    kinds = [(e["kind"], e["channel"]) for e in events(central)]
    assert ("code_reused", "ssh") in kinds and ("code_reused", "web") in kinds


def test_wrong_codes_over_ssh_lock_the_portal_too(central: Central, account: Account) -> None:
    bad = other_code(account.secret)
    for _ in range(5):
        assert not login(central.sshd, central.user, bad).ok
    refused = login(central.sshd, central.user, oathtool_totp(account.secret))
    assert not refused.ok
    assert refused.messages == ["Too many attempts, try again in 1 minute.\n"]
    status, page = portal_code_step(central, oathtool_totp(account.secret))
    assert status == 200 and "Too many failed attempts" in page
    kinds = [(e["kind"], e["channel"]) for e in events(central)]
    assert kinds.count(("code_wrong", "ssh")) == 5
    assert ("throttled", "ssh") in kinds and ("throttled", "web") in kinds


def test_a_recovery_code_works_once_over_ssh(central: Central, account: Account) -> None:
    code = account.recovery[0]
    assert login(central.sshd, central.user, code.lower()).ok, central.sshd.log_text()
    assert not login(central.sshd, central.user, code).ok
    kinds = [e["kind"] for e in events(central)]
    assert kinds[:2] == ["recovery_used", "signin_ok"]


def test_after_a_support_reset_ssh_refuses_or_with_nullok_takes_the_key_alone(
    central: Central, account: Account
) -> None:
    central.django(
        "from keyfob.accounts.models import User\n"
        "from keyfob.audit.events import Context\n"
        "from keyfob.twofactor import flows\n"
        f"flows.disable_by_support(User.objects.get(email={EMAIL!r}), Context())\n"
    )
    refused = login(central.sshd, central.user, oathtool_totp(account.secret))
    assert not refused.ok
    assert "Two-factor authentication is off for your account" in refused.messages[0]

    central.sshd.set_pam_auth(central.pam_line(nullok=True))
    result = login(central.sshd, central.user, "")
    assert result.ok, central.sshd.log_text()
    assert result.prompts == []  # not even asked


def test_nullok_still_asks_an_enrolled_account(central: Central, account: Account) -> None:
    central.sshd.set_pam_auth(central.pam_line(nullok=True))
    assert not login(central.sshd, central.user, other_code(account.secret)).ok
    result = login(central.sshd, central.user, oathtool_totp(account.secret))
    assert result.ok and result.prompts == ["Verification code: "]


def test_keyfob_stopped_refuses_at_once(central: Central, account: Account) -> None:
    # A long timeout: a refused connection must not wait for it.
    url = f"https://127.0.0.1:{free_port()}"
    central.sshd.set_pam_auth(central.pam_line(url=url, extra="timeout=20"))
    result = login(central.sshd, central.user, oathtool_totp(account.secret))
    assert not result.ok
    assert result.messages == [UNAVAILABLE + "\n"]
    assert result.seconds < 5


def test_keyfob_silent_refuses_after_the_timeout(central: Central, account: Account) -> None:
    with socket.socket() as hole:  # accepts the connection (backlog), never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        port = hole.getsockname()[1]
        url = f"https://127.0.0.1:{port}"
        central.sshd.set_pam_auth(central.pam_line(url=url, extra="timeout=1"))
        result = login(central.sshd, central.user, oathtool_totp(account.secret))
    assert not result.ok and result.messages == [UNAVAILABLE + "\n"]
    assert 1 <= result.seconds < 10


def test_an_untrusted_certificate_or_token_is_refused(central: Central, account: Account) -> None:
    other_ca = central.server.ca.parent / "o.pem"
    central.sshd.set_pam_auth(central.pam_line(cafile=other_ca))
    assert not login(central.sshd, central.user, oathtool_totp(account.secret)).ok

    forged = central.token_file.parent / "forged-token"
    forged.write_text("kfs_aaaaaaaaaaaaaaaa_" + "A" * 43 + "\n")
    forged.chmod(0o600)
    central.sshd.set_pam_auth(central.pam_line(token_file=forged))
    result = login(central.sshd, central.user, oathtool_totp(account.secret))
    assert not result.ok and result.messages == [UNAVAILABLE + "\n"]

    forged.chmod(0o644)  # readable by anyone: the module will not use it
    central.sshd.set_pam_auth(central.pam_line(token_file=central.token_file.parent / "x"))
    assert not login(central.sshd, central.user, oathtool_totp(account.secret)).ok
    assert events(central) == []  # none of these reached the account


def test_ssh_events_and_login_in_the_customers_security_page(
    central: Central, account: Account
) -> None:
    assert not login(central.sshd, central.user, other_code(account.secret)).ok
    assert login(central.sshd, central.user, oathtool_totp(account.secret)).ok
    browser = Browser()
    browser.password_step(central.server, EMAIL)  # type: ignore[arg-type]
    later = oathtool_totp(account.secret, time.time() + 30)
    assert browser.post(central.server, "/login/code/", {"code": later})[0] == 302  # type: ignore[arg-type]
    status, _headers, page = browser.get(central.server, "/account/security/")  # type: ignore[arg-type]
    assert status == 200
    section = page.split('id="ssh"')[1].split("</section>")[0]
    assert f"<code>{central.user.name}</code>" in section and SERVER_NAME in section
    activity = page.split('id="activity"')[1]
    rows = [row for row in activity.split("<tr") if '"Channel">SSH</td>' in row]
    assert len(rows) == 2, activity  # the wrong code and the login
    assert all("127.0.0.1" in row for row in rows)
