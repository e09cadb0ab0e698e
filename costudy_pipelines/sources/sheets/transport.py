"""A gspread client for Google, or for any server speaking the Sheets API v4 (the sandbox).

gspread 6 has no base-URL setting: its endpoints are module constants bound at import. Its
supported extension point is the `http_client` class that `gspread.Client` instantiates, and
every API call goes through that class's `request(method, endpoint, ...)`. So a subclass that
moves Google's hosts onto another base URL redirects every call, and the rest of gspread (the
metadata and values requests, their parsing, APIError) runs unchanged. Without credentials,
gspread takes a plain `requests.Session` (its documented way: credentials None, own session).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # gspread imports google-auth and requests: ~0.2 s, paid by a sheets sync only
    import gspread
    from google.auth.credentials import Credentials
    from gspread.http_client import HTTPClient

GOOGLE_API_HOSTS = ("https://sheets.googleapis.com", "https://www.googleapis.com")


def gspread_client(
    base_url: str | None = None,
    credentials: Credentials | None = None,
    *,
    token: str | None = None,
    timeout: float | tuple[float, float] | None = None,
    http_client: type[HTTPClient] | None = None,
) -> gspread.Client:
    """A gspread.Client talking to Google (base_url None) or to the server at `base_url`.

    credentials: Google credentials (e.g. a service account's); required for Google. Against
      another server they are optional: without them requests go out unauthenticated, or with
      `Authorization: Bearer <token>` when `token` is given.
    timeout: seconds (or (connect, read)) before a request gives up; gspread waits forever
      by default.
    http_client: gspread.HTTPClient (the default) or a subclass such as
      gspread.BackOffHTTPClient.
    """
    import gspread
    import requests

    http_client = http_client or gspread.HTTPClient
    if base_url is None:
        if credentials is None:
            raise ValueError("Google Sheets needs credentials (e.g. a service account's)")
        client = gspread.Client(auth=credentials, http_client=http_client)
    else:
        session = None
        if credentials is None:
            session = requests.Session()
            if token:
                session.headers["Authorization"] = f"Bearer {token}"
        rebased = _rebased(http_client, base_url.rstrip("/"))
        # gspread types `auth` as required, but its HTTPClient uses a given session as it is
        client = gspread.Client(auth=credentials, session=session, http_client=rebased)  # type: ignore[arg-type]
    if timeout is not None:
        client.set_timeout(timeout)
    return client


def rebase_url(url: str, base_url: str) -> str:
    """Google's API URL moved onto `base_url`, path and query kept."""
    for host in GOOGLE_API_HOSTS:
        if url.startswith(host + "/"):
            return base_url + url[len(host) :]
    return url


def _rebased(http_client: type[HTTPClient], base_url: str) -> type[HTTPClient]:
    # a subclass of whichever HTTPClient class the caller chose: mypy takes no variable as a base
    class RebasedHTTPClient(http_client):  # type: ignore[misc, valid-type]
        def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> Any:
            return super().request(method, rebase_url(endpoint, base_url), *args, **kwargs)

    RebasedHTTPClient.__name__ = f"Rebased{http_client.__name__}"
    return RebasedHTTPClient
