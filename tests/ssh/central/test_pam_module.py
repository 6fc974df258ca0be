"""pam_keyfob.py's own logic against a stand-in for pam_python's handle: options, messages,
failing closed. (The real pam_python and sshd are in test_central_login.py.)"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import syslog
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from keyfob.ssh import pam_keyfob
from tests.tls import Tls, write_tls

LOG = pam_keyfob._log  # the real one, before any test replaces it


class PamError(Exception):
    pass


class FakePamh:
    PAM_SUCCESS, PAM_SERVICE_ERR, PAM_AUTH_ERR, PAM_USER_UNKNOWN = 0, 3, 7, 10
    PAM_AUTHINFO_UNAVAIL, PAM_CONV_ERR = 9, 19
    PAM_PROMPT_ECHO_OFF, PAM_ERROR_MSG = 1, 3
    exception = PamError

    class Message:
        def __init__(self, style: int, text: str) -> None:
            self.msg_style, self.msg = style, text

    class Response:
        def __init__(self, resp: str | None) -> None:
            self.resp = resp

    def __init__(self, answer: str | None = "123456", user: str = "alice") -> None:
        self.answer, self.user, self.rhost = answer, user, "203.0.113.9"
        self.said: list[tuple[int, str]] = []

    def get_user(self, prompt: Any) -> str:
        return self.user

    def conversation(self, message: Any) -> Any:
        self.said.append((message.msg_style, message.msg))
        if message.msg_style == self.PAM_PROMPT_ECHO_OFF:
            if self.answer is None:
                raise PamError("no terminal")
            return self.Response(self.answer)
        return self.Response(None)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("kfs_test\n")
    path.chmod(0o600)
    if os.geteuid() != 0:
        pytest.skip("the module insists on a token file owned by root")
    return path


def argv(token_file: Path, *extra: str) -> list[str]:
    return [
        "/usr/local/lib/keyfob/pam_keyfob.py",
        "url=https://k.example",
        f"token_file={token_file}",
        *extra,
    ]


class Keyfob:
    """Stands in for the server: ``queue`` is what it will answer, ``sent`` what it got."""

    def __init__(self) -> None:
        self.queue: list[dict[str, Any]] = []
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def append(self, reply: dict[str, Any]) -> None:
        self.queue.append(reply)

    def call(self, options: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append((path, body))
        reply = self.queue.pop(0)
        if "raise" in reply:
            raise reply["raise"]
        return reply


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Keyfob:
    keyfob = Keyfob()
    monkeypatch.setattr(pam_keyfob, "call", keyfob.call)
    monkeypatch.setattr(pam_keyfob, "_log", lambda priority, text: None)
    return keyfob


@pytest.mark.parametrize(
    ("reply", "status", "message"),
    [
        ({"result": "accepted"}, 0, None),
        ({"result": "rejected"}, 7, "That code is not right, or it was already used."),
        ({"result": "throttled", "retry_after": 30}, 7, "try again in 1 minute."),
        ({"result": "throttled", "retry_after": 121}, 7, "try again in 3 minutes."),
        ({"result": "not_enrolled"}, 7, "Two-factor authentication is off"),
        ({"result": "unknown_login"}, 7, "not linked"),
        ({"result": "something new"}, 7, "cannot be checked right now"),
        ({"raise": pam_keyfob.Unavailable("down")}, 9, "cannot be checked right now"),
    ],
)
def test_results_map_to_pam(
    token_file: Path,
    answers: Keyfob,
    reply: dict[str, Any],
    status: int,
    message: str | None,
) -> None:
    answers.append(reply)
    pamh = FakePamh()
    assert pam_keyfob.pam_sm_authenticate(pamh, 0, argv(token_file)) == status
    assert pamh.said[0] == (pamh.PAM_PROMPT_ECHO_OFF, "Verification code: ")
    errors = [text for style, text in pamh.said if style == pamh.PAM_ERROR_MSG]
    assert errors == ([] if message is None else [errors[0]])
    if message:
        assert message in errors[0]
    ((path, body),) = answers.sent
    assert path == "/api/v1/ssh/verify"
    assert body == {"login": "alice", "code": "123456", "client_address": "203.0.113.9"}


def test_french_messages(token_file: Path, answers: Keyfob) -> None:
    answers.append({"result": "throttled", "retry_after": 600})
    pamh = FakePamh()
    assert pam_keyfob.pam_sm_authenticate(pamh, 0, argv(token_file, "lang=fr")) == 7
    assert pamh.said == [
        (pamh.PAM_PROMPT_ECHO_OFF, "Code de vérification : "),
        (pamh.PAM_ERROR_MSG, "Trop de tentatives, réessayez dans 10 minutes."),
    ]


def test_nullok_asks_first_and_skips_the_prompt(token_file: Path, answers: Keyfob) -> None:
    answers.append({"result": "not_enrolled"})
    pamh = FakePamh()
    assert pam_keyfob.pam_sm_authenticate(pamh, 0, argv(token_file, "nullok")) == 0
    assert pamh.said == []
    assert answers.sent == [("/api/v1/ssh/check", {"login": "alice"})]


def test_empty_code_and_no_terminal_fail_without_asking_keyfob(
    token_file: Path, answers: Keyfob
) -> None:
    assert pam_keyfob.pam_sm_authenticate(FakePamh(answer="  "), 0, argv(token_file)) == 7
    assert pam_keyfob.pam_sm_authenticate(FakePamh(answer=None), 0, argv(token_file)) == 19
    assert answers.sent == []


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["url=https://k.example"],
        ["url=http://k.example", "token_file=/t"],
        ["url=https://k.example", "token_file=/t", "timeout=100"],
        ["url=https://k.example", "token_file=/t", "timeout=soon"],
        ["url=https://k.example", "token_file=/t", "lang=de"],
        ["url=https://k.example", "token_file=/t", "debug"],
        ["url=https://k.example:99999", "token_file=/t"],
    ],
)
def test_a_bad_pam_line_refuses_every_login(args: list[str]) -> None:
    pamh = FakePamh()
    assert pam_keyfob.pam_sm_authenticate(pamh, 0, ["pam_keyfob.py", *args]) == 3
    assert pamh.said == []


def test_the_token_file_must_be_roots_alone(tmp_path: Path, answers: Keyfob) -> None:
    path = tmp_path / "token"
    path.write_text("kfs_test\n")
    path.chmod(0o644)
    with pytest.raises(pam_keyfob.ConfigError, match="mode 0600"):
        pam_keyfob.read_token(str(path))
    with pytest.raises(pam_keyfob.ConfigError, match="cannot open"):
        pam_keyfob.read_token(str(tmp_path / "missing"))


def test_an_unexpected_error_fails_closed(
    token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(pam_keyfob, "authenticate", boom)
    monkeypatch.setattr(pam_keyfob, "_log", lambda priority, text: None)
    assert pam_keyfob.pam_sm_authenticate(FakePamh(), 0, argv(token_file)) == 7


# -- issue 15: one deadline per call; the login escaped in syslog ----------------------------


class TrickleServer:
    """A real TLS server on 127.0.0.1 that reads the request, then answers one byte every
    ``pause`` seconds: a peer slow enough to hold a login, never silent long enough for a
    per-operation timeout. It stops when the client goes away, or after ``limit`` seconds."""

    ANSWER = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 22\r\n"
        b'Connection: close\r\n\r\n{"result": "accepted"}'
    )

    def __init__(self, tls: Tls, pause: float = 0.2, limit: float = 30) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(tls.cert, tls.key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pause, self.limit = pause, limit
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        self.listener.settimeout(self.limit)
        with self.listener, contextlib.suppress(OSError):
            raw, _ = self.listener.accept()
            raw.settimeout(self.limit)
            with self.context.wrap_socket(raw, server_side=True) as conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                stop = time.monotonic() + self.limit
                for byte in self.ANSWER:
                    if time.monotonic() > stop:
                        break
                    conn.sendall(bytes([byte]))
                    time.sleep(self.pause)


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return write_tls(tmp_path / "tls")


def test_a_trickling_peer_gets_one_deadline_for_the_whole_call(token_file: Path, tls: Tls) -> None:
    """Seen failing before the fix: the call lasted the whole trickle (about 24 s here, for
    a 1 s timeout) and returned the answer."""
    server = TrickleServer(tls)
    options = pam_keyfob.parse_options(
        [f"url=https://127.0.0.1:{server.port}", f"token_file={token_file}",
         f"cafile={tls.ca}", "timeout=1"]
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(pam_keyfob.Unavailable, match="TimeoutError"):
        pam_keyfob.call(options, pam_keyfob.VERIFY_PATH, {"login": "alice", "code": "1"})
    assert time.monotonic() - started < 2.5
    server.thread.join(timeout=10)


def test_a_login_name_is_escaped_in_syslog(
    token_file: Path, answers: Keyfob, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen failing before the fix: the name reached syslog with its newline."""
    lines: list[str] = []
    monkeypatch.setattr(pam_keyfob, "_log", LOG)  # undo the fixture's: the real one
    monkeypatch.setattr(syslog, "openlog", lambda *args: None)
    monkeypatch.setattr(syslog, "syslog", lambda priority, text: lines.append(text))
    answers.append({"result": "rejected"})
    pamh = FakePamh(user="frank\nFAKE: root accepted")
    assert pam_keyfob.pam_sm_authenticate(pamh, 0, argv(token_file)) == 7
    assert lines == ["frank\\nFAKE: root accepted: rejected from 203.0.113.9"]
    assert answers.sent[0][1]["login"] == "frank\nFAKE: root accepted"  # Keyfob gets it as is
