"""HTTP hygiene in front of the API: oversized bodies get 413, invalid input 422, never a 5xx.

BentoML answers a pydantic validation error with 400; the contract (spec section 6) says empty text is a 422,
as FastAPI would answer. So for the JSON API routes every 4xx from input parsing is reported as 422, and a body
above ``max_bytes`` is refused before it is read into memory or parsed.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from api.monitoring import metrics

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyGuard:
    """ASGI middleware for the POST API routes ``paths``."""

    def __init__(self, app: ASGIApp, paths: frozenset[str], max_bytes: int) -> None:
        self.app = app
        self.paths = paths
        self.max_bytes = max_bytes

    # One pass in the order a request must be refused (route, media type, declared length, streamed length): each
    # refusal is an early return, and splitting them apart would hide that order.
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: C901
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media.startswith(b"multipart/") or media == b"application/x-www-form-urlencoded":
            # BentoML would parse these as forms (and fail on multipart with a 500); the body must be JSON.
            kind = media.decode("latin-1")
            await self._refuse(send, 415, f"content type {kind} not supported: send application/json")
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send, 413, f"request body larger than {self.max_bytes} bytes")
            return
        # Read the body ourselves (chunked uploads have no length) and stop at the limit.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":  # answer anyway: returning silently makes uvicorn log a 500
                await self._refuse(send, 400, "client disconnected before the request body was complete")
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, 413, f"request body larger than {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send_422(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 400:
                message = {**message, "status": 422}
            await send(message)

        await self.app(scope, replay, send_422)

    @staticmethod
    async def _refuse(send: Send, status: int, error: str) -> None:
        await refuse(send, status, error)


class LoadShedder:
    """ASGI middleware: answer 503 with ``Retry-After`` at once when a request could not be answered in time.

    The latency budget already sends tier 1's overflow to the rules; a request is shed only when so many are
    waiting that even the rules' answers would come late: more than this worker answers in ``budget_s`` (its
    answers over the last second, at least ``min_in_flight``), and never more than ``max_in_flight``. Shed
    requests are counted in ``/metrics``.
    """

    def __init__(
        self,
        app: ASGIApp,
        paths: frozenset[str],
        max_in_flight: int,
        budget_s: float = 1.0,
        min_in_flight: int = 64,
        retry_after_s: int = 1,
    ) -> None:
        self.app = app
        self.paths = paths
        self.max_in_flight = max_in_flight
        self.budget_s = budget_s
        self.min_in_flight = min_in_flight
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self._answered: deque[float] = deque()  # when this worker's recent answers went out

    def limit(self, now: float) -> int:
        """How many requests this worker can hold and still answer within the budget."""
        while self._answered and self._answered[0] < now - 1.0:
            self._answered.popleft()
        return min(self.max_in_flight, max(self.min_in_flight, int(len(self._answered) * self.budget_s)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit(time.monotonic()):
            metrics().shed.inc()
            await refuse(
                send,
                503,
                f"overloaded: {self.in_flight} requests in flight, retry after {self.retry_after_s}s",
                [(b"retry-after", str(self.retry_after_s).encode())],
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self._answered.append(time.monotonic())


async def refuse(send: Send, status: int, error: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps({"error": error}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
