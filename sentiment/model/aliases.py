"""Model aliases: ``champion`` (what serving loads) and ``challenger``, pinned to exact versions in the store.

BentoML's ``latest`` moves with every training run, so serving ``name:latest`` let any run change the answers at
the next restart. Serving follows ``champion`` instead, and only a recorded decision moves it.

One source of truth: an append-only history, ``<store>/../aliases/<name>.jsonl`` (``$BENTOML_HOME/aliases/``
beside ``models/``). The current state is its replay, the last record per alias winning. It lives with the store
because the tags it names exist only there: every checkout, worktree or data directory that shares the store
shares its champion. Inside a Bento the store is the Bento's own ``models/`` folder, which holds exactly the
versions the Bento packaged; build it with the champion alone and the bootstrap rule below resolves to it.

Bootstrap: when no champion was ever recorded and the store has versions, the newest becomes champion, recorded
with action ``bootstrap``. Registration asks right after saving (``registry.save_to_store``), so in a fresh store
that is the first trained model; in a store older than aliases it is the version ``latest`` already served.
Training never moves an existing champion.

Writers (CLI, registration, a serving process bootstrapping) may race: each reads, decides and appends under
one ``flock`` on ``<history>.lock``, so every record's ``from_tag`` is the state it was decided against.
"""

from __future__ import annotations

import fcntl
import getpass
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from sentiment.jsonl import append_records, iter_records
from sentiment.model.registry import list_versions
from sentiment.records import Alias, AliasAction, AliasChange
from sentiment.settings import ModelSettings

log = logging.getLogger(__name__)

HISTORY_DIR = "aliases"


class AliasError(Exception):
    """An alias change that was refused; the message says why (and when ``force`` would override it)."""


class AliasState(BaseModel):
    """Which exact version each alias names right now (``None``: not set)."""

    champion: str | None = None
    challenger: str | None = None


def store_dir() -> Path:
    """The model store BentoML uses now: ``$BENTOML_HOME/models``, a test's temporary one, or a Bento's own."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    return Path(BentoMLContainer.model_store.get()._path)  # no public accessor for the store's folder


def history_path(name: str, store: Path | None = None) -> Path:
    """Where the alias history of model ``name`` lives: beside the store's ``models/`` folder."""
    return (store or store_dir()).parent / HISTORY_DIR / f"{name}.jsonl"


def default_actor() -> str:
    """``user@host (pid N)``: who made a change, for the history."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container uid with no passwd entry
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


def replay(records: list[AliasChange]) -> AliasState:
    """The state a history leads to: the last record per alias wins."""
    state = AliasState()
    for r in records:
        setattr(state, r.alias, r.to_tag)
    return state


def champion_lineage(records: list[AliasChange]) -> list[str]:
    """Champions still to roll back to, oldest first: promotions push, rollbacks pop."""
    stack: list[str] = []
    for r in records:
        if r.alias != "champion" or r.to_tag is None:
            continue
        if r.action == "rollback" and stack:
            stack.pop()
        if not stack or stack[-1] != r.to_tag:
            stack.append(r.to_tag)
    return stack


class AliasRegistry:
    """The aliases of one model name: read the state and history, move aliases under the lock."""

    def __init__(self, name: str, path: Path | None = None, actor: str | None = None) -> None:
        self.name = name
        self.path = path or history_path(name)
        self.actor = actor or default_actor()

    # Reading

    def history(self) -> list[AliasChange]:
        """Every change, oldest first (a torn last line is skipped by the reader; a hand-edited bad one raises)."""
        return [AliasChange.model_validate(r) for r in iter_records(self.path)]

    def state(self) -> AliasState:
        return replay(self.history())

    def stamp(self) -> int:
        """Grows with every change (the history only grows): poll it to notice an alias move cheaply."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def versions(self) -> list[str]:
        """Exact tags of every stored version, oldest first."""
        return [v.tag for v in list_versions(self.name)]

    def stored_tag(self, tag: str) -> str:
        """The exact ``name:version`` of ``tag`` (a version, a unique prefix of one, or ``name:...``)."""
        import bentoml
        from bentoml.exceptions import BentoMLException

        full = tag if ":" in tag else f"{self.name}:{tag}"
        if full.split(":", 1)[0] != self.name:
            raise AliasError(f"{tag} is not a version of {self.name}")
        try:
            return str(bentoml.models.get(full).tag)
        except BentoMLException as exc:  # NotFound, or an ambiguous prefix
            raise AliasError(f"{full} is not in the model store: {exc}") from exc

    # Serving

    def resolve_serving_tag(self) -> str | None:
        """The exact version ``champion`` names, bootstrapping it if never set; ``None`` for an empty store.

        A read-only filesystem (a Bento image) cannot take the bootstrap record: the choice is then made
        unrecorded, and it is the same choice, since it depends only on the store's contents.
        """
        champion = self.state().champion
        if champion is not None:
            return champion
        try:
            return self.bootstrap(command="resolve_serving_tag")
        except OSError as exc:
            newest = self._newest()
            log.warning(
                "cannot record the bootstrap champion in %s (%s); serving %s unrecorded", self.path, exc, newest
            )
            return newest

    # Changes

    def bootstrap(self, command: str = "") -> str | None:
        """Make the newest stored version champion if no champion was ever recorded; returns the champion."""
        with self._locked():
            champion = self.state().champion
            if champion is not None:
                return champion
            newest = self._newest()
            if newest is None:
                return None
            n = len(self.versions())
            reason = (
                "bootstrap: the first stored version"
                if n == 1
                else f"bootstrap: {n} versions stored before aliases existed; "
                f"keeping the newest, the one {self.name}:latest served"
            )
            self._append([self._change("champion", "bootstrap", None, newest, reason, command=command)])
            return newest

    def promote(
        self, alias: Alias, tag: str, reason: str, report: Path | None = None, force: bool = False, command: str = ""
    ) -> list[AliasChange]:
        """Point ``alias`` at ``tag``; returns the records written.

        Refused: an unknown tag, a missing report, a no-op, a challenger equal to the champion, and, unless
        ``force``, a champion whose stored test macro-F1 is below the current champion's. A forced champion change
        is recorded as forced. Promoting the challenger to champion also clears the challenger.
        """
        if not reason.strip():
            raise AliasError("a reason is required")
        full = self.stored_tag(tag)
        report_path = str(report.resolve()) if report is not None else None
        if report is not None and not report.is_file():
            raise AliasError(f"report {report} does not exist")
        with self._locked():
            state = self.state()
            current = getattr(state, alias)
            if current == full:
                raise AliasError(f"{alias} already names {full}")
            if alias == "challenger" and state.champion == full:
                raise AliasError(f"{full} is the champion; a challenger must be another version")
            forced = False
            if alias == "champion" and state.champion is not None:
                worse = self._worse_than(full, state.champion)
                if worse and not force:
                    raise AliasError(f"{worse}; pass force (--force) to promote anyway")
                forced = force  # recorded whenever asked for: it may override a promotion gate, not only this check
            changes = [self._change(alias, "promote", current, full, reason, report_path, forced, command)]
            if alias == "champion" and state.challenger == full:
                changes.append(
                    self._change(
                        "challenger",
                        "clear",
                        full,
                        None,
                        f"promoted to champion: {reason}",
                        report_path,
                        command=command,
                    )
                )
            self._append(changes)
            return changes

    def rollback(self, reason: str, command: str = "") -> AliasChange:
        """Champion back to the one it replaced, in one recorded step; repeated, it walks further back."""
        if not reason.strip():
            raise AliasError("a reason is required")
        with self._locked():
            lineage = champion_lineage(self.history())
            if len(lineage) < 2:
                raise AliasError("no earlier champion to roll back to")
            target = lineage[-2]
            if target not in self.versions():
                raise AliasError(f"the previous champion {target} is no longer in the model store")
            change = self._change("champion", "rollback", lineage[-1], target, reason, command=command)
            self._append([change])
            return change

    def clear_challenger(self, reason: str, command: str = "") -> AliasChange:
        """Unset the challenger (the champion cannot be cleared, only replaced or rolled back)."""
        if not reason.strip():
            raise AliasError("a reason is required")
        with self._locked():
            current = self.state().challenger
            if current is None:
                raise AliasError("no challenger is set")
            change = self._change("challenger", "clear", current, None, reason, command=command)
            self._append([change])
            return change

    # Internals

    def _newest(self) -> str | None:
        versions = self.versions()
        return versions[-1] if versions else None

    def _worse_than(self, candidate: str, champion: str) -> str:
        """Why ``candidate`` looks worse than ``champion`` on stored test macro-F1, or ``""``."""
        f1 = {v.tag: v.test_macro_f1 for v in list_versions(self.name)}
        new, old = f1.get(candidate), f1.get(champion)
        if new is None or old is None or new >= old:
            return ""
        return f"{candidate} has test macro-F1 {new:.4f}, below champion {champion}'s {old:.4f}"

    def _change(
        self,
        alias: Alias,
        action: AliasAction,
        from_tag: str | None,
        to_tag: str | None,
        reason: str,
        report: str | None = None,
        forced: bool = False,
        command: str = "",
    ) -> AliasChange:
        return AliasChange(
            model=self.name,
            alias=alias,
            action=action,
            from_tag=from_tag,
            to_tag=to_tag,
            reason=reason,
            report=report,
            forced=forced,
            by=self.actor,
            command=command,
        )

    def _append(self, changes: list[AliasChange]) -> None:
        append_records(self.path, changes, fsync=True)
        for c in changes:
            log.info("%s %s: %s -> %s (%s)", c.action, c.alias, c.from_tag, c.to_tag, c.reason)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Read-decide-append as one step across processes (the history's own lock covers only the write)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock


def resolve_serving_tag(name: str) -> str | None:
    """The exact ``name:version`` to serve: the champion (bootstrapped if never set), ``None`` if none stored."""
    return AliasRegistry(name).resolve_serving_tag()


def serving_tag(model: ModelSettings) -> str | None:
    """What the service serves: a version pinned in the settings, else the champion."""
    return model.tag or resolve_serving_tag(model.name)


def require_serving_tag(model: ModelSettings) -> str:
    """:func:`serving_tag` for tools that need a model: says how to get one when the store has none."""
    tag = serving_tag(model)
    if tag is None:
        raise AliasError(f"no {model.name} model in the store: train one first (python scripts/train.py)")
    return tag
