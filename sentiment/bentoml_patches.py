"""Fixes to BentoML 1.4.38 internals, each found under load here.

They rewrite private code, so :func:`apply_patches` applies them (at service start, never at import) only when the
installed BentoML is a version they were tested on; on any other it logs a warning naming the upstream issue and
leaves BentoML as it is. Each patch marks what it replaced, so applying twice changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

log = logging.getLogger(__name__)
TESTED_VERSIONS = frozenset({"1.4.38"})
UPSTREAM = {
    "cap_batch_wait": "no upstream issue; the learned wait of CorkDispatcher's Optimizer (see bentoml/BentoML#3664)",
    "defer_session_close": "bentoml/BentoML#5544 (session closed under in-flight calls since 1.4.30, PR #5541)",
    "cache_io_schema_kind": "no upstream issue; IOMixin.mime_type and IORootModel.model_validate_json build a JSON "
    "schema on every call",
}


def apply_patches(max_batch_wait_s: float | None = None, installed: str | None = None) -> list[str]:
    """The fixes, if BentoML is a tested version; returns the names applied (empty when skipped). A service without
    a batchable API (the CPU runners) passes no batch wait."""
    installed = installed or version("bentoml")
    if installed not in TESTED_VERSIONS:
        for name, issue in UPSTREAM.items():
            log.warning(
                "BentoML %s is not a version %s was tested on (%s): skipped; upstream: %s",
                installed,
                name,
                ", ".join(sorted(TESTED_VERSIONS)),
                issue,
            )
        return []
    if max_batch_wait_s is not None:
        cap_batch_wait(max_batch_wait_s)
    defer_session_close()
    cache_io_schema_kind()
    return [name for name in UPSTREAM if max_batch_wait_s is not None or name != "cap_batch_wait"]


def cap_batch_wait(max_wait_s: float) -> None:
    """Bound how long BentoML's batcher holds a lone request for company.

    Its CorkDispatcher (1.4.38) waits, per batch, about the mean wait of its last 50 batches. Under overload those
    waits are queueing behind the busy model (seconds), and the mean decays slowly, so for minutes afterwards light
    traffic is held for seconds.
    Capping the learned wait keeps batching under load (batches still form while the model is busy) without it.
    """
    from bentoml._internal.marshal.dispatcher import Optimizer

    if getattr(Optimizer.trigger_refresh, "capped", False):
        return
    original: Callable[[Optimizer], None] = Optimizer.trigger_refresh

    def trigger_refresh(self: Optimizer) -> None:
        original(self)
        self.wait = min(self.wait, max_wait_s)  # type: ignore[assignment]  # declared `= 0`, holds float seconds

    trigger_refresh.capped = True  # type: ignore[attr-defined]
    Optimizer.trigger_refresh = trigger_refresh  # type: ignore[method-assign]


_CLOSING: set[asyncio.Task[Any]] = set()


def defer_session_close() -> None:
    """Let calls in flight finish on the HTTP session BentoML's client is replacing.

    Its SessionManager replaces the aiohttp session every 100 calls and awaits ``close()`` on the old one first:
    calls still in flight on it fail, and under a burst callers that arrive during the close are handed the
    closing session too, so a burst loses many calls. Here the swap
    is atomic and the old session is closed once its calls have had the client timeout to finish.
    """
    from _bentoml_impl.client.proxy2 import SessionManager

    if getattr(SessionManager.get_session, "deferred", False):
        return

    async def get_session(self: SessionManager) -> Any:
        if self._session is None or self._should_refresh():
            old = self._session
            self._session = self._make_client()
            self._created_at = time.monotonic()
            self._request_count = 0
            if old is not None:
                loop = asyncio.get_running_loop()
                grace = (self._timeout.total or 60.0) + 1.0

                def close() -> None:
                    task = loop.create_task(old.close())
                    _CLOSING.add(task)
                    task.add_done_callback(_CLOSING.discard)

                loop.call_later(grace, close)
        self._request_count += 1
        return self._session

    get_session.deferred = True  # type: ignore[attr-defined]
    SessionManager.get_session = get_session


def cache_io_schema_kind() -> None:
    """Work out once per IO class what BentoML works out from a fresh JSON schema on every call.

    Answering a call whose output is a list (every runner here: ``list[ModelOutput]``, ``list[LanguageResult]``,
    ``list[RuleVerdict]``), BentoML 1.4.38 asks ``mime_type()``, which builds the output type's whole JSON schema to
    see whether it is a string or a file; the client builds it again in ``model_validate_json`` to read the answer.
    That costs CPU on both sides of every runner call, and both answers depend only on the class.
    """
    from _bentoml_sdk.io_models import IOMixin, IORootModel

    if getattr(IOMixin.mime_type, "cached", False):
        return
    mime_type_of = IOMixin.mime_type.__func__
    mime_types: dict[type[Any], str] = {}
    kinds: dict[type[Any], object] = {}

    def mime_type(cls: type[Any]) -> str:
        if cls not in mime_types:
            mime_types[cls] = mime_type_of(cls)
        return mime_types[cls]

    def model_validate_json(cls: type[Any], json_data: str | bytes | bytearray, /, **kwargs: Any) -> Any:
        if cls not in kinds:
            kinds[cls] = cls.model_json_schema().get("type")
        parsed = json_data if kinds[cls] in ("string", "file") else json.loads(json_data)
        return cls.model_validate(parsed, **kwargs)

    mime_type.cached = True  # type: ignore[attr-defined]
    IOMixin.mime_type = classmethod(mime_type)
    IORootModel.model_validate_json = classmethod(model_validate_json)
