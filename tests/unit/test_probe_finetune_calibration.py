"""The calibration probe's summary: fold means per budget and policy, and the folds over the gate's tolerance."""

from typing import Any

import pytest

from experiments.probe_finetune_calibration import summarise


def _row(cap: int, champion: tuple[float, float], policies: dict[str, tuple[float, float]]) -> dict[str, Any]:
    return {
        "cap": cap,
        "champion": {"rest_macro_f1": champion[0], "base_macro_f1": champion[1]},
        "policies": {k: {"rest_macro_f1": r, "base_macro_f1": b} for k, (r, b) in policies.items()},
    }


def test_fold_means_per_budget_and_policy() -> None:
    rows = [
        _row(100, (0.50, 0.70), {"as_run": (0.30, 0.45), "prior": (0.52, 0.70)}),
        _row(100, (0.60, 0.66), {"as_run": (0.64, 0.64), "prior": (0.61, 0.655)}),
        _row(200, (0.55, 0.68), {"as_run": (0.57, 0.66), "prior": (0.56, 0.675)}),
    ]
    got = summarise(rows)
    assert list(got) == [100, 200] and list(got[100]) == ["as_run", "prior"]
    collapse, held = got[100]["as_run"], got[100]["prior"]
    assert collapse["folds"] == 2
    assert collapse["rest_gain_mean"] == pytest.approx((-0.20 + 0.04) / 2) and collapse["rest_gain_min"] == -0.2
    assert collapse["base_loss_max"] == 0.25 and collapse["folds_base_loss_over_tolerance"] == 2
    assert held["rest_gain_mean"] == pytest.approx(0.015) and held["base_loss_mean"] == pytest.approx(0.0025)
    assert held["folds_base_loss_over_tolerance"] == 0
    assert got[200]["prior"]["folds"] == 1 and got[200]["prior"]["base_loss_max"] == pytest.approx(0.005)
