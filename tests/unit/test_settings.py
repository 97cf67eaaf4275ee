"""The one settings object: env vars per nested section, explicit overrides on top, paths derived from the data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentiment.settings import load_settings


def test_env_vars_set_nested_fields_and_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_GATES__CONFIDENCE_GATE", "0.7")
    monkeypatch.setenv("SENTIMENT_GATES__MIN_CHARS", "9")
    assert load_settings().gates.confidence_gate == 0.7
    s = load_settings(gates={"confidence_gate": 0.8})
    assert (s.gates.confidence_gate, s.gates.min_chars) == (0.8, 9)  # the override replaces one field only


def test_run_outputs_live_under_the_data_dir(tmp_path: Path) -> None:
    s = load_settings(paths={"data_dir": tmp_path})
    assert s.paths.reports_dir == tmp_path / "reports"
    assert s.paths.predictions_log.parent == tmp_path and s.paths.human_queue.parent == tmp_path
    assert s.paths.drift_report.parent == s.paths.reports_dir
    explicit = load_settings(paths={"data_dir": tmp_path, "reports_dir": tmp_path / "elsewhere"})
    assert explicit.paths.reports_dir == tmp_path / "elsewhere"


def test_the_default_data_dir_is_outside_the_checkout_under_tests() -> None:
    """tests/conftest.py points SENTIMENT_PATHS__DATA_DIR at a temporary folder for the whole session."""
    from sentiment.settings import REPO_ROOT

    assert REPO_ROOT not in load_settings().paths.data_dir.parents
