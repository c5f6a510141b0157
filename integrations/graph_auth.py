"""App-only tokens for Microsoft Graph from an msal confidential client.

msgraph-sdk's `GraphServiceClient(credentials=…)` / kiota's `AzureIdentityAuthenticationProvider`
call ``credential.get_token(*scopes, claims=…, enable_cae=…)`` and await the result when it is
awaitable, so both an azure-identity style `TokenCredential` and an `AsyncTokenCredential`
work. `MsalClientCredential` is the sync one; its async twin `AsyncMsalClientCredential` (what
`build_graph_client` should get) runs msal in a thread so the event loop never blocks on
the token endpoint.

msal is synchronous, caches tokens itself (``acquire_token_for_client`` looks in its cache
first) and does network I/O already in its constructor (tenant discovery), so the
application object is built lazily, in the worker thread, on the first token request.

Errors become `GraphAuthError` whose message names the msal error code and description and
never the secret or the private key.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from azure.core.credentials import AccessToken
from pydantic import SecretStr

from procurement.errors import PermanentError

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"


class GraphAuthError(PermanentError):
    """No token: wrong tenant/client id, bad or expired secret/certificate, or no consent."""


class _MsalApp(Protocol):
    def acquire_token_for_client(
        self, scopes: list[str], claims_challenge: str | None = None, **kwargs: Any
    ) -> dict[str, Any] | None: ...


class _MsalCredential:
    """What the sync and async credentials share: configuration, the lazy msal app, one token request.

    Give either ``client_secret`` (kept as a `SecretStr`, unwrapped only for msal) or
    ``certificate_thumbprint`` + ``certificate_key_file``
    (a PEM file with the private key; optionally the public certificate too, which enables
    subject name/issuer auth). ``app_factory`` replaces the msal application (tests).
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        *,
        client_secret: SecretStr | str | None = None,
        certificate_thumbprint: str | None = None,
        certificate_key_file: str | Path | None = None,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        app_factory: Callable[[], _MsalApp] | None = None,
    ) -> None:
        if not tenant_id or not client_id:
            raise GraphAuthError("Graph credential needs a tenant id and a client id")
        secret = SecretStr(client_secret) if isinstance(client_secret, str) else client_secret
        if secret is not None and len(secret) == 0:
            secret = None
        if app_factory is None and secret is None and not (certificate_thumbprint and certificate_key_file):
            raise GraphAuthError("Graph credential needs a client secret or a certificate (thumbprint and key file)")
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._secret = secret
        self._thumbprint = certificate_thumbprint or None
        self._key_file = Path(certificate_key_file) if certificate_key_file else None
        self._authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._app_factory = app_factory
        self._app: _MsalApp | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the secret
        kind = "secret" if self._secret is not None else "certificate" if self._thumbprint else "custom"
        return f"{type(self).__name__}(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, {kind})"

    def _scrub(self, text: str) -> str:
        """`text` with the secret, should msal ever quote it, replaced by ***."""
        if self._secret is None:
            return text
        return text.replace(self._secret.get_secret_value(), "***")

    def _client_credential(self) -> str | dict[str, str]:
        if self._secret is not None:
            return self._secret.get_secret_value()  # the one place the secret leaves its wrapper
        assert self._key_file is not None and self._thumbprint is not None
        try:
            pem = self._key_file.read_text(encoding="utf-8")
        except OSError as err:
            raise GraphAuthError(
                f"cannot read the certificate key file {self._key_file}: {type(err).__name__}"
            ) from None
        credential = {"private_key": pem, "thumbprint": self._thumbprint.replace(":", "").upper()}
        if "BEGIN CERTIFICATE" in pem:
            credential["public_certificate"] = pem
        return credential

    def _get_app(self) -> _MsalApp:
        with self._lock:
            if self._app is None:
                if self._app_factory is not None:
                    self._app = self._app_factory()
                else:
                    import msal

                    try:
                        self._app = msal.ConfidentialClientApplication(
                            self.client_id,
                            client_credential=self._client_credential(),
                            authority=self._authority,
                        )
                    except GraphAuthError:
                        raise
                    except Exception as err:  # bad PEM, tenant discovery failed, …
                        # The text of msal's errors never holds the secret, but a key parse
                        # error could quote key material: report the type only.
                        raise GraphAuthError(
                            f"cannot set up the msal client for tenant {self.tenant_id}: {type(err).__name__}"
                        ) from None
            return self._app

    def _acquire(self, scopes: tuple[str, ...], claims: str | None) -> AccessToken:
        """A token for `scopes` (Graph's ``.default`` when none), from msal's cache or Entra ID (blocking)."""
        wanted = list(scopes) or [GRAPH_SCOPE]
        app = self._get_app()
        try:
            result = app.acquire_token_for_client(wanted, claims_challenge=claims or None)
        except Exception as err:  # network errors from requests inside msal
            raise GraphAuthError(f"token request failed: {type(err).__name__}") from None
        if not result or "access_token" not in result:
            result = result or {}
            error = str(result.get("error") or "no_token")
            description = str(result.get("error_description") or "").splitlines()
            first = description[0] if description else ""
            first = self._scrub(first)  # belt and braces
            raise GraphAuthError(f"Entra ID refused the token request: {error}: {first}".rstrip(": "), code=error)
        expires_in = int(result.get("expires_in") or 3599)
        return AccessToken(str(result["access_token"]), int(time.time()) + expires_in)


class MsalClientCredential(_MsalCredential):
    """An azure-identity style `TokenCredential` over `msal.ConfidentialClientApplication`."""

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return self._acquire(scopes, claims)

    def close(self) -> None:
        pass


class AsyncMsalClientCredential(_MsalCredential):
    """The `AsyncTokenCredential` shape of `MsalClientCredential` (msal runs in a thread)."""

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return await asyncio.to_thread(self._acquire, scopes, claims)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> AsyncMsalClientCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class StaticTokenCredential:
    """A fixed bearer token (tests against the Graph-shaped server; tokens from elsewhere)."""

    def __init__(self, token: str, lifetime: int = 3600) -> None:
        self._token = token
        self._lifetime = lifetime
        self.calls = 0

    def __repr__(self) -> str:
        return "StaticTokenCredential(***)"

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.calls += 1
        return AccessToken(self._token, int(time.time()) + self._lifetime)

    async def close(self) -> None:
        pass
