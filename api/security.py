"""API keys and per-client rate limits, as ASGI middleware in front of the API (BentoML has neither built in).

Keys are held only as SHA-256 digests and compared with ``hmac.compare_digest`` against every stored digest, so
neither a memory dump nor response timing gives one away. A refused request gets a JSON body (401 or 429 with
``Retry-After``) and is counted in ``/metrics``; nothing on the classification path changes.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from api.http import Scope, refuse
from api.monitoring import metrics
from sentiment.settings import SecuritySettings

HASHED = "sha256:"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_key_digests(security: SecuritySettings) -> frozenset[str]:
    """Digests of every configured key, from the settings and the secret file; "sha256:<hex>" entries as they are."""
    entries: list[str] = list(security.api_keys)
    if security.api_keys_file is not None:
        lines = Path(security.api_keys_file).read_text(encoding="utf-8").splitlines()
        entries += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return frozenset(e[len(HASHED) :].lower() if e.startswith(HASHED) else digest(e) for e in entries)


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """``Authorization: Bearer <key>`` (what ``bentoml.SyncHTTPClient(token=...)`` sends) or ``X-API-Key``."""
    for name, value in headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].decode("latin-1").strip()
        if name == b"x-api-key":
            return value.decode("latin-1").strip()
    return None


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> float:
        """0 when a request may go now; otherwise the seconds until it may."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class AccessGuard:
    """ASGI middleware: a valid key on the protected paths (when keys are configured), then a rate per client."""

    MAX_CLIENTS = 100_000  # buckets kept; the oldest go first, so a flood of addresses cannot grow memory

    def __init__(self, app: Any, security: SecuritySettings) -> None:
        self.app = app
        self.paths = frozenset(security.protected_paths)
        self.digests = load_key_digests(security)
        self.rate, self.burst = security.rate_limit_per_s, security.rate_limit_burst
        self.buckets: dict[str, TokenBucket] = {}

    def _known(self, key: str | None) -> str | None:
        """The digest of a valid key, checked against all stored digests in constant time each."""
        if key is None:
            return None
        d = digest(key)
        match = False
        for stored in self.digests:
            match |= hmac.compare_digest(d, stored)
        return d if match else None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        client = None
        if self.digests:
            client = self._known(presented_key(scope.get("headers") or []))
            if client is None:
                metrics().refused.labels("unauthorized").inc()
                await refuse(
                    send,
                    401,
                    "missing or invalid API key (Authorization: Bearer <key> or X-API-Key)",
                    [(b"www-authenticate", b'Bearer realm="review-sentiment"')],
                )
                return
        if self.rate is not None:
            who = client or (scope.get("client") or ("unknown",))[0]
            wait = self._bucket(who).take()
            if wait > 0:
                metrics().refused.labels("rate_limited").inc()
                retry = max(1, int(wait + 0.999))
                await refuse(
                    send,
                    429,
                    f"rate limit of {self.rate:g} requests/s exceeded; retry after {retry}s",
                    [(b"retry-after", str(retry).encode())],
                )
                return
        await self.app(scope, receive, send)

    def _bucket(self, who: str) -> TokenBucket:
        bucket = self.buckets.pop(who, None)
        if bucket is None:
            assert self.rate is not None
            bucket = TokenBucket(self.rate, self.burst)
            if len(self.buckets) >= self.MAX_CLIENTS:
                self.buckets.pop(next(iter(self.buckets)))
        self.buckets[who] = bucket  # re-inserted: dict order is least recently seen first
        return bucket
