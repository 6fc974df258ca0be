"""A tiny relying party that nobody here wrote the protocol of: Authlib's OAuth 2 client
(``OAuth2Session``, PKCE S256, client_secret_basic) and its OpenID Connect claim checks
(``authlib.oidc.core.CodeIDToken`` over a JWT verified with joserfc against the provider's
JWKS, as Authlib's own ``OpenIDMixin.parse_id_token`` does it).

It is a real HTTP server on 127.0.0.1 (a thread of the test process, a free port):

- ``/login?…`` builds the authorization URL with a new state, nonce and PKCE verifier
  (any other query parameter, such as ``acr_values``, ``max_age`` or ``prompt``, is passed
  on), keeps them under a cookie of its own, and redirects the browser to the provider;
- ``/callback`` checks the state, exchanges the code with Authlib, validates the ID token
  (signature, iss, aud, exp, iat, nonce, at_hash) and records what it got;
- ``/logged-out`` records the provider's redirect after RP-initiated logout.

Every outcome is a :class:`Result` in ``results``, for the test to assert.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from tests.conftest import free_port

SCOPE = "openid email profile"


@dataclass
class Result:
    """What one visit to ``/callback`` (or ``/logged-out``) brought."""

    path: str
    params: dict[str, str]
    error: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    token: dict[str, Any] = field(default_factory=dict)
    problem: str = ""  # what the RP itself refused (a state or token check), if anything


class RelyingParty:
    def __init__(self, provider: str) -> None:
        self.provider = provider.rstrip("/")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.redirect_uri = f"{self.url}/callback"
        self.logged_out_uri = f"{self.url}/logged-out"
        self.client_id = ""
        self.client_secret = ""
        self.results: list[Result] = []
        self._pending: dict[str, dict[str, str]] = {}
        self._http = requests.Session()
        self._http.trust_env = False  # no proxy between two local servers
        self._server: ThreadingHTTPServer | None = None
        self._metadata: dict[str, Any] | None = None

    # --- the provider, as a relying party learns it -------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            found = self._http.get(f"{self.provider}/.well-known/openid-configuration")
            found.raise_for_status()
            self._metadata = found.json()
        return self._metadata

    def session(self, **token: Any) -> OAuth2Session:
        client = OAuth2Session(
            self.client_id,
            self.client_secret,
            scope=SCOPE,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",
            token=token or None,
        )
        client.trust_env = False
        return client

    def id_token_claims(self, id_token: str, nonce: str | None, access_token: str) -> CodeIDToken:
        meta = self.metadata
        keys = KeySet.import_key_set(self._http.get(meta["jwks_uri"]).json())
        decoded = jwt.decode(
            id_token,
            key=keys,
            registry=JWSRegistry(algorithms=meta["id_token_signing_alg_values_supported"]),
        )
        params: dict[str, Any] = {"client_id": self.client_id, "access_token": access_token}
        if nonce is not None:
            params["nonce"] = nonce
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {
                "iss": {"essential": True, "value": meta["issuer"]},
                "aud": {"essential": True, "value": self.client_id},
            },
            params,
        )
        claims.validate(leeway=120)
        return claims

    # --- what the test calls ----------------------------------------------------------

    @property
    def last(self) -> Result:
        return self.results[-1]

    def refresh(self, refresh_token: str) -> Result:
        """The refresh grant through Authlib; the ID token it brings is validated too (no
        nonce: OpenID Connect Core 12.2)."""
        try:
            token = dict(
                self.session().refresh_token(
                    self.metadata["token_endpoint"], refresh_token=refresh_token
                )
            )
        except Exception as exc:  # Authlib raises OAuthError for the provider's answer
            return Result("refresh", {}, error=getattr(exc, "error", "") or str(exc))
        claims = self.id_token_claims(token["id_token"], None, token["access_token"])
        return Result("refresh", {}, claims=dict(claims), token=token)

    def userinfo(self, token: dict[str, Any]) -> requests.Response:
        return self.session(**token).get(self.metadata["userinfo_endpoint"])

    def logout_url(self, id_token: str, state: str) -> str:
        return (
            self.metadata["end_session_endpoint"]
            + "?"
            + urlencode(
                {
                    "id_token_hint": id_token,
                    "post_logout_redirect_uri": self.logged_out_uri,
                    "state": state,
                }
            )
        )

    # --- the server ----------------------------------------------------------------------

    def start(self) -> RelyingParty:
        rp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = dict(parse_qsl(parts.query, keep_blank_values=True))
                cookie = SimpleCookie(self.headers.get("Cookie", ""))
                sid = cookie["rp"].value if "rp" in cookie else ""
                if parts.path == "/login":
                    self._redirect(*rp._login(params))
                elif parts.path == "/callback":
                    self._page(rp._callback(sid, params, f"{rp.url}{self.path}"))
                elif parts.path == "/logged-out":
                    rp.results.append(Result("logged-out", params))
                    self._page("Signed out of the test app.")
                else:
                    self.send_error(404)

            def _redirect(self, location: str, sid: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Set-Cookie", f"rp={sid}; Path=/; HttpOnly")
                self.end_headers()

            def _page(self, text: str) -> None:
                body = f"<!doctype html><title>Test app</title><p id='rp'>{text}</p>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._http.close()

    def _login(self, extra: dict[str, str]) -> tuple[str, str]:
        state, nonce, verifier = generate_token(24), generate_token(24), generate_token(48)
        sid = secrets.token_urlsafe(16)
        self._pending[sid] = {"state": state, "nonce": nonce, "verifier": verifier}
        uri, _ = self.session().create_authorization_url(
            self.metadata["authorization_endpoint"],
            state=state,
            nonce=nonce,
            code_verifier=verifier,
            **extra,
        )
        return uri, sid

    def _callback(self, sid: str, params: dict[str, str], full_url: str) -> str:
        pending = self._pending.pop(sid, None)
        result = Result("callback", params)
        self.results.append(result)
        if pending is None or params.get("state") != pending["state"]:
            result.problem = "state"
            return "Refused: not the state this app sent."
        # RFC 9207: a provider that says it sends ``iss`` must send its own.
        said = self.metadata.get("authorization_response_iss_parameter_supported")
        if params.get("iss", None if said else self.metadata["issuer"]) != self.metadata["issuer"]:
            result.problem = "iss"
            return "Refused: not the issuer this app knows."
        if "error" in params:
            result.error = params["error"]
            return f"The provider said: {result.error}"
        token = dict(
            self.session().fetch_token(
                self.metadata["token_endpoint"],
                authorization_response=full_url,
                state=pending["state"],
                code_verifier=pending["verifier"],
            )
        )
        claims = self.id_token_claims(token["id_token"], pending["nonce"], token["access_token"])
        result.claims, result.token = dict(claims), token
        return f"Signed in as {claims['email']}"
