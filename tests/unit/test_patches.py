"""The BentoML 1.4.38 fixes in sentiment/bentoml_patches.py behave as they claim, on BentoML's own classes."""

from __future__ import annotations

import asyncio

from sentiment.bentoml_patches import defer_session_close


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


def test_the_batchers_learned_wait_is_capped() -> None:
    from bentoml._internal.marshal.dispatcher import Optimizer

    from sentiment.bentoml_patches import cap_batch_wait

    cap_batch_wait(0.02)
    cap_batch_wait(0.02)  # idempotent
    optimizer = Optimizer(max_latency=30.0)
    for _ in range(10):  # batches that waited 3 s each behind a busy model, as under overload
        optimizer.o_stat.append((8, 0.05, 3.0))
    optimizer.trigger_refresh()
    assert optimizer.wait == 0.02
    assert optimizer.o_a > 0  # the rest of BentoML's fit still runs


def test_patches_are_skipped_on_an_untested_bentoml(caplog) -> None:
    from sentiment.bentoml_patches import apply_patches

    with caplog.at_level("WARNING"):
        assert apply_patches(0.02, installed="9.9.9") == []
    assert "bentoml/BentoML#5544" in caplog.text and "skipped" in caplog.text
    assert apply_patches(0.02) == ["cap_batch_wait", "defer_session_close", "cache_io_schema_kind"]  # tested version


def test_io_classes_answer_their_media_type_and_parse_answers_as_before_without_rebuilding_schemas() -> None:
    from _bentoml_sdk.io_models import IORootModel, ensure_io_descriptor
    from pydantic import TypeAdapter

    from sentiment.bentoml_patches import cache_io_schema_kind
    from sentiment.outputs import ModelOutput

    rows = ensure_io_descriptor(list[ModelOutput])
    text = ensure_io_descriptor(str)
    before = (rows.mime_type(), text.mime_type())
    body = '[{"probs": [0.1, 0.2, 0.7], "unk_rate": 0.0, "oov_rate": 0.5}]'
    parsed_before = rows.model_validate_json(body)
    cache_io_schema_kind()
    cache_io_schema_kind()  # idempotent
    builds = 0
    original = TypeAdapter.json_schema

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal builds
        builds += 1
        return original(self, *args, **kwargs)

    TypeAdapter.json_schema = counting  # type: ignore[method-assign]
    try:
        for _ in range(3):
            assert (rows.mime_type(), text.mime_type()) == before == ("application/json", "text/plain")
            assert rows.model_validate_json(body) == parsed_before
            assert text.model_validate_json("plain words").root == "plain words"
    finally:
        TypeAdapter.json_schema = original  # type: ignore[method-assign]
    assert builds <= 2  # at most once per class (text's parse kind), never per call
    assert issubclass(rows, IORootModel)
