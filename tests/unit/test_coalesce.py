"""The coalescer: concurrent requests share runner calls, each gets exactly its own rows back, failures reach
every caller, and a caller that gave up does not block or receive anything."""

from __future__ import annotations

import asyncio

import pytest

from api.coalesce import Coalescer


class SlowUpper:
    """A runner stand-in with real latency: records what each call carried."""

    def __init__(self, delay: float = 0.02, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.calls: list[list[str]] = []

    async def __call__(self, texts: list[str]) -> list[str]:
        self.calls.append(list(texts))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("runner down")
        return [t.upper() for t in texts]


def test_concurrent_requests_share_calls_and_get_their_own_rows_in_order() -> None:
    runner = SlowUpper()
    co: Coalescer[str] = Coalescer(runner, max_in_flight=1, max_texts=256)

    async def main() -> list[list[str]]:
        return await asyncio.gather(*(co([f"a{i}", f"b{i}"]) for i in range(20)))

    answers = asyncio.run(main())
    assert answers == [[f"A{i}", f"B{i}"] for i in range(20)]
    assert len(runner.calls) < 20 and sum(len(c) for c in runner.calls) == 40
    assert max(len(c) for c in runner.calls) > 2


def test_a_lone_request_goes_out_at_once() -> None:
    runner = SlowUpper(delay=0.0)
    co: Coalescer[str] = Coalescer(runner, max_in_flight=2, max_texts=256)

    async def main() -> list[str]:
        return await co(["x"])

    assert asyncio.run(main()) == ["X"] and runner.calls == [["x"]]


def test_calls_respect_the_text_limit_and_the_in_flight_limit() -> None:
    runner = SlowUpper()
    co: Coalescer[str] = Coalescer(runner, max_in_flight=2, max_texts=5)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        for _ in range(50):
            peak = max(peak, co._in_flight)
            await asyncio.sleep(0.002)

    async def main() -> list[list[str]]:
        watcher = asyncio.create_task(watch())
        out = await asyncio.gather(*(co([str(i), str(i)]) for i in range(30)))
        await watcher
        return out

    out = asyncio.run(main())
    assert out == [[str(i), str(i)] for i in range(30)]
    assert max(len(c) for c in runner.calls) <= 5
    assert peak == 2


def test_a_failed_call_reaches_every_caller_in_it() -> None:
    co: Coalescer[str] = Coalescer(SlowUpper(fail=True), max_in_flight=1, max_texts=256)

    async def main() -> list[object]:
        return await asyncio.gather(*(co([str(i)]) for i in range(5)), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, ConnectionError) for r in results)


def test_a_runner_returning_the_wrong_number_of_rows_is_an_error_not_a_shifted_answer() -> None:
    async def short(texts: list[str]) -> list[str]:
        return texts[:-1]

    co: Coalescer[str] = Coalescer(short, max_in_flight=1, max_texts=256)

    async def main() -> list[object]:
        return await asyncio.gather(co(["a"]), co(["b", "c"]), return_exceptions=True)

    assert all(isinstance(r, ValueError) for r in asyncio.run(main()))


def test_a_caller_that_timed_out_is_skipped_and_the_rest_are_answered() -> None:
    runner = SlowUpper(delay=0.05)
    co: Coalescer[str] = Coalescer(runner, max_in_flight=1, max_texts=256)

    async def main() -> tuple[object, list[str]]:
        first = asyncio.create_task(co(["first"]))  # occupies the only slot
        await asyncio.sleep(0)
        impatient = asyncio.create_task(asyncio.wait_for(co(["impatient"]), timeout=0.01))
        patient = asyncio.create_task(co(["patient"]))
        with pytest.raises(TimeoutError):
            await impatient
        await first
        return await patient, runner.calls

    answer, calls = asyncio.run(main())
    assert answer == ["PATIENT"]
    assert ["impatient"] not in calls and all("impatient" not in c for c in calls)


def test_a_call_dropped_by_the_connection_is_sent_once_more_and_only_once() -> None:
    import aiohttp

    from api.runner_tiers import resent_if_dropped

    attempts: list[int] = []

    def flaky(failures: int):
        async def call() -> str:
            attempts.append(1)
            if len(attempts) <= failures:
                raise aiohttp.ServerDisconnectedError()
            return "answer"

        return call

    assert asyncio.run(resent_if_dropped(flaky(1))) == "answer" and len(attempts) == 2
    attempts.clear()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        asyncio.run(resent_if_dropped(flaky(2)))
    assert len(attempts) == 2


def test_switched_off_every_request_makes_its_own_call() -> None:
    runner = SlowUpper()
    co: Coalescer[str] = Coalescer(runner, max_in_flight=0, max_texts=256)

    async def main() -> list[list[str]]:
        return await asyncio.gather(*(co([str(i)]) for i in range(6)))

    assert asyncio.run(main()) == [[str(i)] for i in range(6)]
    assert sorted(runner.calls) == [[str(i)] for i in range(6)]


def _staggered(gather_s: float) -> list[list[str]]:
    """One request, then three more 5 ms apart while its call is out (a busy runner at moderate load)."""
    runner = SlowUpper(delay=0.3)
    co: Coalescer[str] = Coalescer(runner, max_in_flight=2, max_texts=256, gather_s=gather_s)

    async def main() -> list[list[str]]:
        tasks = [asyncio.create_task(co(["a"]))]
        await asyncio.sleep(0.01)
        for text in "bcd":
            tasks.append(asyncio.create_task(co([text])))
            await asyncio.sleep(0.005)
        assert await asyncio.gather(*tasks) == [["A"], ["B"], ["C"], ["D"]]
        return runner.calls

    return asyncio.run(main())


def test_while_a_call_is_out_requests_gather_for_a_few_milliseconds_and_share_the_next() -> None:
    assert _staggered(gather_s=0.1) == [["a"], ["b", "c", "d"]]
    # Without the window the second request takes the free slot alone; only the later ones share a call.
    assert _staggered(gather_s=0.0) == [["a"], ["b"], ["c", "d"]]


def test_a_lone_request_does_not_wait_for_the_gathering_window() -> None:
    runner = SlowUpper(delay=0.0)
    co: Coalescer[str] = Coalescer(runner, max_in_flight=2, max_texts=256, gather_s=1.0)

    async def main() -> float:
        start = asyncio.get_running_loop().time()
        assert await co(["x"]) == ["X"]
        return asyncio.get_running_loop().time() - start

    assert asyncio.run(main()) < 0.5
