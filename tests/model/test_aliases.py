"""Model aliases on a real BentoML store (temporary ``BENTOML_HOME``) with real tiny stored models.

Covers: the bootstrap champion, training that never moves it, promote/rollback, a history that outlives the
objects and processes that wrote it, concurrent writers, the read-only (Bento) case and the CLI end to end.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import bentoml
import pytest

from sentiment.model.aliases import AliasError, AliasRegistry, champion_lineage, history_path, resolve_serving_tag
from sentiment.model.registry import ModelMetadata, list_versions, save_to_store
from sentiment.records import AliasChange
from sentiment.settings import load_settings
from tests.support import REPO
from tests.support.models import MUSIC, isolated_store, small_config
from training.chain_view import chain_view
from training.pipeline import run

NAME = "review-sentiment"


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """An empty BentoML home whose ``models/`` is the store for this test (and for subprocesses given it)."""
    with isolated_store(tmp_path / "bentoml") as h:
        yield h


def store(checkpoint: Path, macro_f1: float = 0.5, name: str = NAME) -> str:
    """Register the tiny checkpoint as a new version, the way training does."""
    meta = ModelMetadata(
        base_model="tiny-random-distilbert",
        profile="tiny",
        metrics={"test_macro_f1": macro_f1, "test_accuracy": 0.6, "test_binary_accuracy": 0.7},
    )
    return save_to_store(name, checkpoint, meta, frozenset({"great", "awful"}))


def subprocess_env(home: Path) -> dict[str, str]:
    return {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}


def test_first_stored_version_becomes_champion_and_the_bootstrap_is_recorded(home: Path, tiny_checkpoint: Path) -> None:  # noqa: F811
    assert resolve_serving_tag(NAME) is None  # empty store: nothing to serve, nothing recorded
    assert not history_path(NAME).exists() or AliasRegistry(NAME).history() == []

    first = store(tiny_checkpoint)

    assert history_path(NAME) == home / "aliases" / f"{NAME}.jsonl"
    assert resolve_serving_tag(NAME) == first
    [change] = AliasRegistry(NAME).history()
    assert (change.alias, change.action, change.from_tag, change.to_tag) == ("champion", "bootstrap", None, first)
    assert change.reason.startswith("bootstrap") and change.command == "save_to_store" and change.by


def test_registering_a_second_model_does_not_move_champion(home: Path, tiny_checkpoint: Path) -> None:  # noqa: F811
    first = store(tiny_checkpoint, macro_f1=0.5)
    second = store(tiny_checkpoint, macro_f1=0.9)  # better, and newer: still not served until promoted

    assert str(bentoml.models.get(f"{NAME}:latest").tag) == second
    assert resolve_serving_tag(NAME) == first
    assert [c.action for c in AliasRegistry(NAME).history()] == ["bootstrap"]


@pytest.mark.slow
@pytest.mark.usefixtures("shared_data")
def test_a_real_training_run_registers_without_moving_champion(
    home: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:  # noqa: F811
    champion = store(tiny_checkpoint, name="test-sentiment")
    cfg = small_config(
        str(tiny_checkpoint), data=[MUSIC], max_train=64, max_val=32, max_test_per_source=16, eval_every=0
    )
    settings = load_settings(paths={"data_dir": tmp_path / "var", "reports_dir": tmp_path / "reports"})

    report = run(cfg, tmp_path / "report", settings, chain_view, register=True, log=lambda *_: None)

    assert report.tag and report.tag != champion
    assert str(bentoml.models.get("test-sentiment:latest").tag) == report.tag
    assert resolve_serving_tag("test-sentiment") == champion
    assert [c.action for c in AliasRegistry("test-sentiment").history()] == ["bootstrap"]


def test_a_store_older_than_aliases_keeps_serving_what_latest_served(home: Path, tiny_checkpoint: Path) -> None:  # noqa: F811
    old = [store(tiny_checkpoint), store(tiny_checkpoint)]
    history_path(NAME).unlink()  # as if these versions were trained before aliases existed

    new = store(tiny_checkpoint)  # the first registration after the upgrade

    assert resolve_serving_tag(NAME) == old[-1] != new
    [change] = AliasRegistry(NAME).history()
    assert change.action == "bootstrap" and "2 versions stored before aliases existed" in change.reason


def test_serving_bootstraps_a_store_filled_without_registration(home: Path) -> None:
    """A Bento's own store, or an imported model: one version, no history, metadata not ours."""
    with bentoml.models.create(NAME, metadata={"note": "imported"}) as ref:
        Path(ref.path, "weights.bin").write_bytes(b"0")

    assert resolve_serving_tag(NAME) == str(ref.tag)
    [change] = AliasRegistry(NAME).history()
    assert (change.action, change.to_tag, change.command) == ("bootstrap", str(ref.tag), "resolve_serving_tag")
    [version] = list_versions(NAME)
    assert version.tag == str(ref.tag) and version.test_macro_f1 is None and version.profile == ""


def test_promote_then_rollback_restores_the_previous_champion(home: Path, tiny_checkpoint: Path) -> None:  # noqa: F811
    a, b, c = (store(tiny_checkpoint) for _ in range(3))
    reg = AliasRegistry(NAME)
    report = home / "comparison.json"
    report.write_text("{}")

    [promoted] = reg.promote("champion", b, "b wins the comparison", report=report, command="test")
    assert (promoted.from_tag, promoted.to_tag, promoted.report, promoted.forced) == (a, b, str(report), False)
    assert resolve_serving_tag(NAME) == b
    reg.promote("champion", c.split(":")[1][:10], "c wins too")  # a unique version prefix is enough
    assert resolve_serving_tag(NAME) == c

    back = reg.rollback("c misbehaves in production")
    assert (back.action, back.from_tag, back.to_tag) == ("rollback", c, b)
    assert resolve_serving_tag(NAME) == b
    reg.rollback("b too")
    assert resolve_serving_tag(NAME) == a
    with pytest.raises(AliasError, match="no earlier champion"):
        reg.rollback("nothing left")
    assert [x.action for x in reg.history()] == ["bootstrap", "promote", "promote", "rollback", "rollback"]


def test_refusals_and_force(home: Path, tiny_checkpoint: Path) -> None:  # noqa: F811
    good = store(tiny_checkpoint, macro_f1=0.8)
    worse = store(tiny_checkpoint, macro_f1=0.6)
    reg = AliasRegistry(NAME)

    with pytest.raises(AliasError, match=r"macro-F1 0\.6000, below .* 0\.8000"):
        reg.promote("champion", worse, "newer")
    with pytest.raises(AliasError, match="not in the model store"):
        reg.promote("champion", "doesnotexist", "typo")
    with pytest.raises(AliasError, match="not a version of"):
        reg.promote("champion", "other-model:abc", "wrong model")
    with pytest.raises(AliasError, match="already names"):
        reg.promote("champion", good, "again")
    with pytest.raises(AliasError, match="is the champion"):
        reg.promote("challenger", good, "pointless")
    with pytest.raises(AliasError, match="does not exist"):
        reg.promote("challenger", worse, "trial", report=home / "missing.json")
    with pytest.raises(AliasError, match="reason is required"):
        reg.promote("challenger", worse, " ")
    with pytest.raises(AliasError, match="no challenger"):
        reg.clear_challenger("nothing to clear")
    assert [c.action for c in reg.history()] == ["bootstrap"]  # nothing refused was written

    [forced] = reg.promote("champion", worse, "the test set changed", force=True)
    assert forced.forced and resolve_serving_tag(NAME) == worse


def test_promoting_the_challenger_clears_it(home: Path, tiny_checkpoint: Path) -> None:  # noqa: F811
    champion, challenger = store(tiny_checkpoint), store(tiny_checkpoint)
    reg = AliasRegistry(NAME)
    reg.promote("challenger", challenger, "shadow it")
    assert reg.state().model_dump() == {"champion": champion, "challenger": challenger}

    changes = reg.promote("champion", challenger, "won the shadow run")

    assert [(c.alias, c.action, c.to_tag) for c in changes] == [
        ("champion", "promote", challenger),
        ("challenger", "clear", None),
    ]
    assert reg.state().model_dump() == {"champion": challenger, "challenger": None}


def test_history_survives_a_new_object_and_a_new_process(home: Path, tiny_checkpoint: Path) -> None:  # noqa: F811
    a, b = store(tiny_checkpoint), store(tiny_checkpoint)
    writer = AliasRegistry(NAME)
    before = writer.stamp()
    writer.promote("champion", b, "promote b")
    writer.promote("challenger", a, "keep a as challenger")
    assert writer.stamp() > before  # what a serving process polls to notice a move

    reader = AliasRegistry(NAME)
    assert reader.history() == writer.history() and reader.state().model_dump() == {"champion": b, "challenger": a}
    code = "from sentiment.model.aliases import resolve_serving_tag; print(resolve_serving_tag('review-sentiment'))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=subprocess_env(home), check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == b


def test_read_only_history_still_resolves_the_same_choice(
    home: Path, tiny_checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # noqa: F811
    """A Bento packages only the champion; on a read-only filesystem its bootstrap cannot be recorded."""
    only = store(tiny_checkpoint)
    path = tmp_path / "aliases" / f"{NAME}.jsonl"
    path.with_suffix(".lock").mkdir(parents=True)  # reads work, opening the lock for writing fails (even as root)
    reg = AliasRegistry(NAME, path=path)

    with caplog.at_level(logging.WARNING, logger="sentiment.model.aliases"):
        assert reg.resolve_serving_tag() == only
    assert "cannot record the bootstrap champion" in caplog.text and not path.exists()


WORKER = """
import sys, time
from pathlib import Path
from sentiment.model.aliases import AliasRegistry
go, tag = Path(sys.argv[1]), sys.argv[2]
reg = AliasRegistry("review-sentiment")
Path(f"{go}.{tag.split(':')[1]}.ready").touch()
while not go.exists():
    time.sleep(0.005)
reg.promote("champion", tag, f"worker promotes {tag}", command="worker")
reg.rollback(f"worker undoes {tag}", command="worker")
"""


@pytest.mark.slow  # a multi-second test: the fast stage stays under a minute
def test_concurrent_promotions_leave_a_consistent_history(home: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:  # noqa: F811
    base = store(tiny_checkpoint)
    tags = [store(tiny_checkpoint) for _ in range(6)]
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(go), t],
            cwd=REPO,
            env=subprocess_env(home),
            stderr=subprocess.PIPE,
            text=True,
        )
        for t in tags
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.*.ready"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.05)  # every worker imported and waits at the start line: they all start at once
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err

    history = AliasRegistry(NAME).history()
    assert len(history) == 1 + 2 * len(tags) and len(history_path(NAME).read_text().splitlines()) == len(history)
    for prev, cur in zip(history, history[1:], strict=False):  # each change was decided on the state before it
        assert cur.from_tag == prev.to_tag, (prev, cur)
    assert sorted(str(c.to_tag) for c in history if c.action == "promote") == sorted(tags)
    assert champion_lineage(history) == [base] and resolve_serving_tag(NAME) == base  # every push was popped


def cli(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "scripts.models", *args],
        cwd=REPO,
        env=subprocess_env(home),
        capture_output=True,
        text=True,
    )
    assert (out.returncode == 0) == ok, out.stderr
    return out


@pytest.mark.slow  # a multi-second test: the fast stage stays under a minute
def test_cli_end_to_end(home: Path, tiny_checkpoint: Path) -> None:  # noqa: F811
    a, b = store(tiny_checkpoint, macro_f1=0.8123), store(tiny_checkpoint, macro_f1=0.7)
    report = home / "evaluation.json"
    report.write_text("{}")

    listing = cli(home, "list").stdout.splitlines()
    assert listing[0].split() == [
        "tag",
        "created",
        "(UTC)",
        "profile",
        "macro-F1",
        "accuracy",
        "neg-vs-pos",
        "acc",
        "aliases",
    ]
    row_a = next(line for line in listing if line.startswith(a))
    assert row_a.split()[-1] == "champion" and "0.8123" in row_a and "tiny" in row_a and "0.7000" in row_a

    refused = cli(home, "promote", b, "--reason", "newer", ok=False)
    assert refused.returncode == 1 and "refused:" in refused.stderr and "--force" in refused.stderr

    promoted = cli(
        home,
        "promote",
        b.split(":")[1],
        "--reason",
        "retrained on fresh data",
        "--report",
        str(report),
        "--force",
        "--json",
    )
    [change] = [AliasChange.model_validate(c) for c in json.loads(promoted.stdout)]
    assert (change.from_tag, change.to_tag, change.forced, change.report) == (a, b, True, str(report))
    assert change.command.startswith("sentiment-models promote") and "--force" in change.command

    cli(home, "challenger", a, "--reason", "shadow the old one")
    rows = {r["tag"]: r["aliases"] for r in json.loads(cli(home, "list", "--json").stdout)}
    assert rows == {a: ["challenger"], b: ["champion"]}
    assert cli(home, "champion").stdout.strip() == b

    cli(home, "challenger", "--clear", "--reason", "done")
    back = cli(home, "rollback", "--reason", "b misbehaves").stdout
    header, _, row = back.splitlines()
    assert header.split()[:5] == ["when", "(UTC)", "alias", "action", "from"]
    assert "rollback" in row and row.index(b) < row.index(a) and "b misbehaves" in row  # from b, to a
    assert json.loads(cli(home, "champion", "--json").stdout) == {"champion": a}

    history = json.loads(cli(home, "history", "--json").stdout)
    assert [(h["alias"], h["action"]) for h in history] == [
        ("champion", "bootstrap"),
        ("champion", "promote"),
        ("challenger", "promote"),
        ("challenger", "clear"),
        ("champion", "rollback"),
    ]
    table = cli(home, "history").stdout
    assert len(table.splitlines()) == 2 + len(history) and "b misbehaves" in table and "retrained on fresh" in table
