"""The BentoML 1.4.38 fixes in runners/patches.py behave as they claim, on BentoML's own classes."""

from __future__ import annotations

import asyncio

from runners.patches import defer_session_close


def test_a_replaced_client_session_stays_open_for_its_calls_then_closes() -> None:
    from _bentoml_impl.client.proxy2 import SessionManager

    defer_session_close()
    defer_session_close()  # idempotent

    async def main() -> None:
        manager = SessionManager("http://127.0.0.1:9", timeout=0.3, headers={})
        first = await manager.get_session()
        for _ in range(manager.max_requests + 1):  # BentoML replaces the session after max_requests calls
            latest = await manager.get_session()
        assert latest is not first
        assert not first.closed  # calls still running on it may finish
        await asyncio.sleep(1.6)  # the client timeout (0.3 s) plus one second of grace
        assert first.closed and not latest.closed
        await manager.close()

    asyncio.run(main())
