"""HTTP/1.1 to one API host over urllib3: connection pooling, the environment's proxy and CA
settings, answers as small `Answer` objects.

Why not `requests`: at the APIs' full speed a call through `requests.Session` costs about twice
the CPU of the same call through urllib3 (request preparation, hooks, cookie jars and header
dicts built for every call): for the targets and the tap the largest cost after the SDK's own.
Network failures are raised as `requests`' exception types all the same (as `requests` maps
urllib3's), the vocabulary the SDK, `backoff` and our retry rules already speak.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from requests.utils import get_auth_from_url, get_environ_proxies, select_proxy
from urllib3 import exceptions as u3


@dataclass
class Answer:
    """What `requests.Response` offers that our clients use, read in full."""

    status_code: int
    reason: str
    headers: Mapping[str, str]  # case-insensitive
    content: bytes
    url: str
    elapsed: dt.timedelta

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")  # every API here answers UTF-8 JSON

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass(frozen=True)
class Environment:
    """The proxy and CA bundle the environment chooses for a URL, as `requests` would:
    `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` unless `NO_PROXY` excludes the host, and
    `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE` or else certifi's bundle. Read once per client."""

    proxy: str | None
    ca_bundle: str

    @classmethod
    def for_url(cls, url: str) -> Environment:
        proxy = select_proxy(url, get_environ_proxies(url))
        bundle = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or requests.certs.where()
        )
        return cls(proxy or None, bundle)


class Transport:
    """Sends requests to one API host; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        pool_size: int = 10,
        timeout: float | tuple[float, float] = (10.0, 120.0),
    ) -> None:
        self.environment = Environment.for_url(base_url)
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.timeout = urllib3.Timeout(connect=connect, read=read)
        # What `requests` sends by default, then the client's own headers.
        self.headers = {
            "Accept": "*/*",
            "Accept-Encoding": "gzip, deflate",
            "Connection": "keep-alive",
            **headers,
        }
        ca = self.environment.ca_bundle
        options: dict[str, Any] = {
            "maxsize": pool_size,
            "retries": False,  # our clients decide what to retry
            "cert_reqs": "CERT_REQUIRED",
            "ca_cert_dir" if os.path.isdir(ca) else "ca_certs": ca,
        }
        proxy = self.environment.proxy
        if proxy:
            user, password = get_auth_from_url(proxy)
            proxy_headers = (
                urllib3.make_headers(proxy_basic_auth=f"{user}:{password}") if user else None
            )
            self._manager: urllib3.PoolManager = urllib3.ProxyManager(
                proxy, proxy_headers=proxy_headers, **options
            )
        else:
            self._manager = urllib3.PoolManager(**options)

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """One attempt. Network failures raise `requests.ConnectionError`, `Timeout`, …"""
        if params:
            query = urlencode([(k, v) for k, v in params.items() if v is not None], doseq=True)
            url = f"{url}{'&' if urlsplit(url).query else '?'}{query}" if query else url
        all_headers = {**self.headers, **headers} if headers else self.headers
        if json_body is not None:
            body = json.dumps(json_body, allow_nan=False).encode()
            all_headers = {**all_headers, "Content-Type": "application/json"}
        started = time.monotonic()
        try:
            response = self._manager.urlopen(
                method,
                url,
                body=body,
                headers=all_headers,
                redirect=False,
                timeout=self.timeout if timeout is None else urllib3.Timeout(timeout),
            )
        except (u3.HTTPError, OSError) as exc:
            raise network_error(exc) from exc
        return Answer(
            status_code=response.status,
            reason=response.reason or "",
            headers=response.headers,
            content=response.data,
            url=url,
            elapsed=dt.timedelta(seconds=time.monotonic() - started),
        )

    def close(self) -> None:
        self._manager.clear()


def network_error(exc: BaseException) -> requests.RequestException:
    """urllib3's failure as the `requests` exception `requests` itself would raise."""
    if isinstance(exc, u3.ProxyError):
        return requests.exceptions.ProxyError(exc)
    if isinstance(exc, u3.SSLError):
        return requests.exceptions.SSLError(exc)
    if isinstance(exc, u3.ConnectTimeoutError) and not isinstance(exc, u3.NewConnectionError):
        return requests.exceptions.ConnectTimeout(exc)
    if isinstance(exc, u3.ReadTimeoutError):
        return requests.exceptions.ReadTimeout(exc)
    if isinstance(exc, u3.DecodeError):
        return requests.exceptions.ContentDecodingError(exc)
    if isinstance(exc, u3.LocationValueError):
        return requests.exceptions.InvalidURL(exc)
    return requests.exceptions.ConnectionError(exc)  # refused, reset, cut short, …
