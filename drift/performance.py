"""The drift report's ``performance`` section: tier 1's estimated performance per model version, reference window
against current, and the ``performance_drop`` verdict.

Drift signals say the inputs changed; this says whether the answers likely got worse. It reads the probabilities
the predictions log keeps (:mod:`sentiment.estimation`); review files and logs older than them have none, and the
section says so instead of guessing.
"""

from __future__ import annotations

import numpy as np

from drift.report import PerformanceReport, PerformanceWindow
from drift.windows import Window
from sentiment.estimation import AtcThreshold, Method, PerformanceEstimate, choose_method, count_windows, estimate
from sentiment.settings import Settings


def _rows(window: Window) -> np.ndarray:
    return np.flatnonzero(np.isfinite(window.probs).all(1)) if len(window.probs) else np.zeros(0, dtype=np.int64)


def _estimate(
    window: Window, rows: np.ndarray, method: Method, atc: AtcThreshold | None, tag: str | None
) -> PerformanceEstimate:
    return estimate(window.probs[rows], method, atc, window.truth[rows].astype(np.int64), model_tag=tag)


def _by_version(
    window: Window, rows: np.ndarray, method: Method, atc: AtcThreshold | None
) -> dict[str, PerformanceEstimate]:
    out = {}
    for code, tag in enumerate(window.tag_names):
        mine = rows[window.tag[rows] == code]
        if len(mine):
            out[tag] = _estimate(window, mine, method, atc, tag or None)
    return out


def performance_section(ref: Window, cur: Window, settings: Settings) -> PerformanceReport:
    est, threshold = settings.estimation, settings.drift.performance_drop
    method, atc, note = choose_method(est.method, est.atc_threshold)
    ref_rows, cur_rows = _rows(ref), _rows(cur)
    if not len(ref_rows) or not len(cur_rows):
        return PerformanceReport(
            method=method,
            window=est.window,
            threshold=threshold,
            skipped=True,
            detail="no tier-1 probabilities in the "
            + ("reference" if not len(ref_rows) else "current")
            + " records (review files, and predictions logged before they were kept, have none)",
        )
    reference = _estimate(ref, ref_rows, method, atc, None)
    current = _by_version(cur, cur_rows, method, atc)
    windows = []
    for code, tag in enumerate(cur.tag_names):
        mine = cur_rows[cur.tag[cur_rows] == code]
        for w in count_windows(len(mine), est.window):
            e = _estimate(cur, mine[w], method, atc, tag or None)
            windows.append(
                PerformanceWindow(
                    model_tag=tag or None,
                    start=int(w.start),
                    estimate=e,
                    drop=reference.macro_f1.value - e.macro_f1.value > threshold,
                )
            )
    drops = {
        tag: round(reference.macro_f1.value - e.macro_f1.value, 4)
        for tag, e in current.items()
        if e.n >= est.min_answers
    }
    fired = sorted(tag for tag, d in drops.items() if d > threshold)
    few = sorted(tag for tag, e in current.items() if e.n < est.min_answers)
    detail = "; ".join(
        part
        for part in (
            note,
            f"estimated macro-F1 fell more than {threshold:.2f} below the reference for {', '.join(fired)}"
            if fired
            else "",
            f"too few answers (< {est.min_answers}) to judge {', '.join(t or '(untagged)' for t in few)}"
            if few
            else "",
        )
        if part
    )
    return PerformanceReport(
        method=method,
        window=est.window,
        threshold=threshold,
        reference=reference,
        reference_by_version=_by_version(ref, ref_rows, method, atc),
        current=current,
        windows=windows,
        drop=drops,
        performance_drop=bool(fired),
        detail=detail,
    )
