"""Join the texts of concurrent requests into one runner call.

BentoML batches inside the callee: every request still crosses to the transformer and language services as its
own HTTP call, and under load that per-call work (serialising, parsing, dispatching, in each service) costs more
CPU than the model on a small box. Here requests that are waiting at the same moment share one
call. A lone request never waits for company: with no call out, a call goes out on the next event-loop turn. While
a call to the runner is already out (the runner is busy anyway), new texts wait up to ``gather_s`` for others to
join them, and while ``max_in_flight`` calls are out they pile up until one returns; so groups grow with load, also
at moderate load, and stay single under light traffic. ``gather_s`` is a few milliseconds against a latency budget
of a second.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
EWMA_WEIGHT = 0.2  # of the newest call in the per-text cost estimate


class Coalescer(Generic[T]):
    """``await coalescer(texts)`` -> one result per text, in order, as if ``call(texts)`` had been made alone."""

    def __init__(
        self, call: Callable[[list[str]], Awaitable[list[T]]], max_in_flight: int, max_texts: int, gather_s: float = 0.0
    ) -> None:
        self._call = call
        self._max_in_flight = max_in_flight
        self._max_texts = max_texts
        self._gather_s = gather_s
        self._in_flight = 0
        self._pending: deque[tuple[list[str], asyncio.Future[list[T]], float]] = deque()  # texts, answer, since
        self._wake = asyncio.Event()  # set whenever a call returns and frees a slot
        self._flusher: asyncio.Task[None] | None = None
        # The loop holds tasks only weakly: a call task nobody references can be collected mid-call, and its
        # callers would then wait for their timeout.
        self._sending: set[asyncio.Task[None]] = set()
        self._pending_texts = 0
        self._in_flight_texts = 0
        self._seconds_per_text: float | None = None  # learnt from answered calls; None until the first one

    def expected_wait_s(self, n: int) -> float:
        """How long ``n`` more texts would wait for their answer, from the texts ahead of them and the cost per text
        of recent calls: a caller with a deadline can give up before queueing instead of after."""
        if self._seconds_per_text is None or (self._in_flight == 0 and not self._pending):
            # Idle: the call would go out now. Letting it through is also how an estimate inflated by a hung runner
            # (seconds per text) learns the real cost again; refusing on it would refuse forever.
            return 0.0
        return (self._pending_texts + self._in_flight_texts + n) * self._seconds_per_text

    async def __call__(self, texts: list[str]) -> list[T]:
        if self._max_in_flight <= 0:  # switched off: every request makes its own call
            return await self._call(texts)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[T]] = loop.create_future()
        self._pending.append((texts, future, loop.time()))
        self._pending_texts += len(texts)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            while self._in_flight >= self._max_in_flight:
                self._wake.clear()
                await self._wake.wait()
            if self._in_flight and self._gather_s > 0 and self._pending_texts < self._max_texts:
                # The runner is busy with a call already: let the oldest waiting request gather company for up
                # to gather_s, so that at moderate load requests share calls instead of each paying for its own.
                left = self._pending[0][2] + self._gather_s - loop.time()
                if left > 0:
                    await asyncio.sleep(left)
                    continue  # a slot may have gone, or the oldest request may have given up, meanwhile
            group = self._take()
            if group:
                self._in_flight += 1
                task = asyncio.create_task(self._send(group))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    def _take(self) -> list[tuple[list[str], asyncio.Future[list[T]]]]:
        """The oldest waiting requests up to ``max_texts`` texts (at least one), skipping ones already given up."""
        group: list[tuple[list[str], asyncio.Future[list[T]]]] = []
        size = 0
        while self._pending and (not group or size + len(self._pending[0][0]) <= self._max_texts):
            texts, future, _ = self._pending.popleft()
            self._pending_texts -= len(texts)
            if not future.done():  # a caller that timed out or was cancelled needs no answer
                group.append((texts, future))
                size += len(texts)
        return group

    async def _send(self, group: list[tuple[list[str], asyncio.Future[list[T]]]]) -> None:
        flat = [t for texts, _ in group for t in texts]
        ahead = self._in_flight_texts
        self._in_flight_texts += len(flat)
        start = time.monotonic()
        try:
            rows = await self._call(flat)
            if len(rows) != len(flat):
                raise ValueError(f"runner returned {len(rows)} rows for {len(flat)} texts")
        except Exception as exc:  # every caller hears of it and takes its own fallback path
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
        else:
            # The calls ahead of this one were served first: the elapsed time covers their texts too.
            sample = (time.monotonic() - start) / (len(flat) + ahead)
            old = self._seconds_per_text
            self._seconds_per_text = sample if old is None else (1 - EWMA_WEIGHT) * old + EWMA_WEIGHT * sample
            first = 0
            for texts, future in group:
                if not future.done():
                    future.set_result(list(rows[first : first + len(texts)]))
                first += len(texts)
        finally:
            self._in_flight_texts -= len(flat)
            self._in_flight -= 1
            self._wake.set()
