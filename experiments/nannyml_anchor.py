"""NannyML's CBPE on the same probabilities and labels as :mod:`experiments.evaluate_estimation`: the anchor.

Runs in NannyML's own environment (``pip install nannyml statsmodels "pandas<2.3" "numpy<2.2"`` in a fresh venv:
0.13.1 installs beside pandas 3 but needs statsmodels and an older pandas to import), so it imports nothing from the
project: it reads the folds the evaluation writes and writes NannyML's estimates back, per window and per stream.
Fitted per fold on the validation split (the reference period: labels and calibrated probabilities), as NannyML
prescribes; by default it recalibrates the probabilities on that reference first.

    /tmp/nanny-venv/bin/python -m experiments.nannyml_anchor IN.json OUT.json
"""

from __future__ import annotations

import json
import sys
import warnings
from importlib.metadata import version
from typing import Any

import nannyml as nml  # type: ignore[import-not-found, unused-ignore]
import numpy as np
import pandas as pd


def frame(probs: list[list[float]], y: list[int], labels: list[str]) -> pd.DataFrame:
    p = np.asarray(probs, dtype=np.float64)
    df = pd.DataFrame({f"p_{name}": p[:, i] for i, name in enumerate(labels)})
    df["y_pred"] = [labels[i] for i in p.argmax(1)]
    df["y_true"] = [labels[i] for i in y]
    return df


def windows(n: int, size: int) -> list[tuple[int, int]]:
    """The evaluation's windows (a tail under half a window joins the last one), so both score the same rows."""
    out = [(a, min(a + size, n)) for a in range(0, n, size)]
    if len(out) > 1 and out[-1][1] - out[-1][0] < size // 2:
        out[-2] = (out[-2][0], n)
        out.pop()
    return out


def estimate_one(est: Any, df: pd.DataFrame) -> dict[str, float]:
    res = est.estimate(df.drop(columns=["y_true"])).to_df()
    res = res[res[("chunk", "period")] == "analysis"]  # the result also holds the reference period's chunks
    assert len(res) == 1, f"expected one analysis chunk, got {len(res)}"
    return {"accuracy": float(res[("accuracy", "value")].iloc[0]), "macro_f1": float(res[("f1", "value")].iloc[0])}


def main(src: str, dst: str) -> int:
    payload = json.loads(open(src).read())
    labels, size = payload["labels"], payload["window"]
    warnings.simplefilter("ignore")  # a whole stream as one chunk is deliberate: NannyML warns about few chunks
    versions = {name: version(name) for name in ("nannyml", "pandas", "numpy", "scikit-learn")}
    out: dict[str, Any] = {"versions": versions, "folds": {}}
    for fold in payload["folds"]:
        ref = frame(fold["val_probs"], fold["val_y"], labels)
        stream = frame(fold["probs"], fold["y"], labels)
        fitted = {}
        for n in {len(stream), *(b - a for a, b in windows(len(stream), size))}:
            est = nml.CBPE(
                y_pred_proba={name: f"p_{name}" for name in labels},
                y_pred="y_pred",
                y_true="y_true",
                problem_type="classification_multiclass",
                metrics=["accuracy", "f1"],
                chunk_size=n,
            )
            fitted[n] = est.fit(ref)
        out["folds"][fold["source"]] = {
            "stream": estimate_one(fitted[len(stream)], stream),
            "windows": [
                estimate_one(fitted[b - a], stream.iloc[a:b].reset_index(drop=True))
                for a, b in windows(len(stream), size)
            ],
        }
        print(fold["source"], out["folds"][fold["source"]]["stream"], flush=True)
    with open(dst, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
