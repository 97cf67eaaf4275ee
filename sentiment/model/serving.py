"""The versions a serving process holds: the champion, which answers, and the challenger, which is only shadowed.

A promotion or rollback moves an alias (:mod:`sentiment.model.aliases`); :meth:`ServingModels.refresh` notices it
from the history's size, loads the new version next to the one serving, switches the reference in one assignment
and lets the old one go, so a running service changes versions without a restart and without a failed answer: a
batch that started on the old version finishes on it. A version that fails to load is logged and the old one keeps
serving. A version pinned in the settings (``model.tag``) is never swapped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pydantic import BaseModel

from sentiment.heap import freeze_heap
from sentiment.model.aliases import AliasRegistry, serving_tag
from sentiment.model.inference import SentimentModel
from sentiment.model.registry import ModelMetadata, resolve
from sentiment.settings import Settings

log = logging.getLogger(__name__)
Loader = Callable[[str], SentimentModel]


class ModelInfo(BaseModel):
    """What the transformer runner knows about its model; ``loaded`` is the readiness signal."""

    loaded: bool
    tag: str | None = None
    metadata: ModelMetadata | None = None
    backend: str = ""  # what actually runs: an export that failed its check leaves "torch"
    challenger: str | None = None  # the version shadow calls score, when one is set
    error: str = ""


def store_loader(settings: Settings) -> Loader:
    """Load a stored version the way serving runs it (backend, threads, the ONNX cache under the data dir)."""
    svc = settings.service

    def load(tag: str) -> SentimentModel:
        path, meta, full = resolve(tag)
        return SentimentModel(
            path,
            meta,
            full,
            svc.inference_threads,
            device=svc.device,
            backend=svc.backend,
            onnx_cache=settings.paths.data_dir / "onnx",
        )

    return load


class ServingModels:
    def __init__(self, settings: Settings, load: Loader | None = None) -> None:
        self.settings = settings
        self.load = load or store_loader(settings)
        self.registry = AliasRegistry(settings.model.name)
        self.champion: SentimentModel | None = None
        self.challenger: SentimentModel | None = None
        self.error = "model is loading"
        self._stamp: int | None = None
        self._refreshing = threading.Lock()

    def refresh(self) -> bool:
        """Load what the aliases name now, if they moved since the last look; True when a version changed."""
        with self._refreshing:
            stamp = self.registry.stamp()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            pinned = self.settings.model.tag
            champion = serving_tag(self.settings.model)  # the champion, bootstrapped on a fresh store
            challenger = None if pinned else self.registry.state().challenger
            changed = self._swap("champion", champion)
            return self._swap("challenger", challenger) or changed

    def _swap(self, role: str, tag: str | None) -> bool:
        current: SentimentModel | None = getattr(self, role)
        if tag is None:
            if role == "champion":
                self.error = f"model {self.settings.model.name} is not in the model store"
            setattr(self, role, None)
            return current is not None
        if current is not None and current.tag == tag:
            return False
        try:
            model = self.load(tag)
        except Exception as exc:  # a broken version is an outage of that version, not of the service
            message = f"{role} {tag} failed to load: {type(exc).__name__}: {exc}"[:300]
            log.exception("%s", message)
            if current is None and role == "champion":
                self.error = message
            return False
        setattr(self, role, model)  # one assignment: a batch in flight keeps its own reference to the old model
        self.error = ""
        log.info("%s is now %s (was %s) on %s", role, tag, current.tag if current else None, model.backend)
        return True

    def watch(self, every_s: float, stop: threading.Event) -> None:
        """Refresh until ``stop`` is set (a serving process's background thread)."""
        while True:
            try:
                if self.refresh():
                    freeze_heap()  # the new model's objects stay out of every later full collection
            except Exception:  # a torn history line or a store hiccup must not end the watch
                log.exception("model refresh failed")
            if stop.wait(every_s):
                return
