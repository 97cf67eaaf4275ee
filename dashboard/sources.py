"""Which files a dashboard view reads. Real and demo views differ only here, so demo data never mixes with real logs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from sentiment.settings import Settings


class Sources(BaseModel):
    """The files one view reads. Real and demo views differ only here, so demo data cannot leak into real logs."""

    kind: Literal["real", "demo"]
    predictions: Path
    queue: Path
    labels: Path
    drift: Path
    sample: Path | None = None  # the labelling sample (fallback.label_sample), read like the queue
    # predictions and queue name <root>/<log>: read that log in every replica folder under root (sentiment.replicas)
    replicas: bool = False

    def shown(self, log: Path) -> Path:
        """How to name the predictions or queue log to an operator: with replicas, every replica's copy."""
        return log.parent / "*" / log.name if self.replicas else log


def demo_dir(settings: Settings) -> Path:
    d = settings.dashboard.demo_dir or settings.paths.data_dir / "demo"
    if d.resolve() == settings.paths.data_dir.resolve():
        raise ValueError(f"demo_dir {d} is the real data dir; demo records must live elsewhere")
    return d


def sources_for(settings: Settings, demo: bool) -> Sources:
    """Real: the service's files, or every replica's under ``paths.replicas_root`` (labels stay in this data dir).
    Demo: the same names under the demo dir (the drift report is shared)."""
    p = settings.paths
    if not demo:
        root = p.replicas_root
        return Sources(
            kind="real",
            predictions=root / p.predictions_log.name if root else p.predictions_log,
            queue=root / p.human_queue.name if root else p.human_queue,
            labels=p.human_labels,
            drift=p.drift_report,
            sample=root / p.labelling_sample.name if root else p.labelling_sample,
            replicas=root is not None,
        )
    d = demo_dir(settings)
    return Sources(
        kind="demo",
        predictions=d / p.predictions_log.name,
        queue=d / p.human_queue.name,
        labels=d / p.human_labels.name,
        drift=p.drift_report,
        sample=d / p.labelling_sample.name,
    )
