"""The fine-tune curve's fold means: what the issue's targets are stated in."""

from typing import Any

from experiments.finetune_curve import by_cap


def _row(
    fold: str, cap: int, champion: float, challenger: float, lo: float, hi: float, loss: float, verdict: str
) -> dict[str, Any]:
    return {
        "fold": fold,
        "cap": cap,
        "labels": cap - 20,
        "verdict": verdict,
        "champion": {"macro_f1": {"mean": champion}},
        "challenger": {"macro_f1": {"mean": challenger}},
        "difference": {"macro_f1": {"mean": challenger - champion, "lo": lo, "hi": hi}},
        "base_macro_f1": {"loss": loss},
    }


def test_fold_means_per_budget_count_the_folds_that_moved() -> None:
    rows = [
        _row("a", 200, 0.40, 0.44, 0.01, 0.07, 0.005, "refused"),
        _row("b", 200, 0.60, 0.58, -0.05, 0.01, 0.02, "refused"),
        _row("c", 200, 0.50, 0.45, -0.08, -0.02, 0.0, "not enough evidence"),
        _row("a", 100, 0.40, 0.41, -0.02, 0.04, 0.0, "refused"),
    ]
    got = by_cap(rows)
    assert list(got) == [100, 200]
    m = got[200]
    assert m["folds"] == 3 and m["labels_mean"] == 180
    assert abs(m["champion_macro_f1"] - 0.5) < 1e-9 and abs(m["difference"] - (0.04 - 0.02 - 0.05) / 3) < 1e-4
    assert (m["folds_better"], m["folds_worse"], m["base_loss_over_0.01"]) == (1, 1, 1)
    assert m["base_loss_max"] == 0.02 and m["verdicts"] == {"refused": 2, "not enough evidence": 1}
