"""The behaviour suite as an operator runs it (``python -m experiments.evaluate_behaviour``) on a stored version:
the tiny random model in an isolated store, through the chain as serving loads it. What is checked is the
benchmark (report, stored metadata, the promotion report's table), not the tiny model's behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments import evaluate_behaviour
from sentiment.model.registry import resolve
from tests.support.tiny_model import register_tiny_model
from training.behaviour import CATEGORIES, BehaviourReport
from training.promotion import behaviour_table, stored_behaviour

pytestmark = pytest.mark.slow


def test_the_suite_runs_on_a_stored_version_and_is_stored_with_it(model_store: Path, tmp_path: Path) -> None:
    tag = register_tiny_model("behaviour-test")
    out = tmp_path / "reports"
    rc = evaluate_behaviour.main(["--model", tag, "--per-template", "5", "--output-dir", str(out), "--run-name", "t"])
    assert rc == 0
    report = BehaviourReport.model_validate_json((out / "t.json").read_text())
    assert report.model == tag and list(report.categories) == list(CATEGORIES)
    assert report.n == sum(s.n for s in report.categories.values()) > 300
    # nonsense never reaches the model: the gate's share is the same whatever the model is
    assert report.categories["nonsense"].pass_rate > 0.9
    stored = resolve(tag)[1].metrics
    assert stored["behaviour"]["pass_rates"] == report.pass_rates()
    assert stored["test_macro_f1"] == 0.0  # the held-out figures stay beside it
    assert stored_behaviour(tag) == report.pass_rates()
    table = "\n".join(behaviour_table(*[_score(tag)] * 2))
    assert "| champion |" in table and f"{report.pass_rates()['nonsense']:.1%}" in table
    assert json.loads((out / "t.json").read_text())["categories"]["emoji"]["n"] > 0


def _score(tag: str):  # a ModelScore with only what the table reads
    from training.promotion import ModelScore

    return ModelScore(
        tag=tag,
        macro_f1=0.0,
        accuracy=0.0,
        per_class_f1={},
        ece=0.0,
        low_confidence_share=0.0,
        parts={},
        behaviour=stored_behaviour(tag),
    )
