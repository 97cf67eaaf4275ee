"""Adapting the champion's weights to a product line: ``sentiment-retrain --from champion``.

Training continues from the champion's checkpoint (its trained head kept), at a lower learning rate, on the product
line's labels mixed with a replay sample of the base training data, so that other product lines are not forgotten.
A fifth of the labels (never the gate's held-out share), with replayed base validation reviews beside them, is the
validation split: it picks the checkpoint (early stop) and recalibrates the result (temperature and class bias),
starting from the champion's calibration and moving only as far as those few dozen reviews support (a MAP fit,
``training.calibrate``); the champion's decision bias is kept, since a few dozen reviews cannot choose one. Bounded
by a time budget, with progress. The new version records the champion's frozen evaluation set and its
``adaptation``; it is set as challenger.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sentiment.model.registry import ModelMetadata, resolve
from sentiment.records import utc_now
from sentiment.settings import Settings
from training.adaptation import AdaptError, AdaptPlan, Start, start
from training.config import CalibrationPrior, TrainConfig
from training.data import Dataset, Review, build_dataset, describe, fingerprint
from training.evalset import HumanExample, build_base, eval_spec_of, human_reviews, in_holdout, text_key
from training.pipeline import ChainViewFn, run


class FineTuneAdaptation(BaseModel):
    """Stored in the new version's metadata (``adaptation``)."""

    method: str = "fine_tune"
    from_tag: str
    ts: str
    labels_file: str
    labels: int  # trained on
    early_stop_labels: int  # the validation split: checkpoint choice and calibration
    held_out: int  # the gate's
    replay: int  # base training reviews mixed in
    val_replay: int = 0  # base validation reviews beside the early-stop labels
    class_counts: dict[str, int]
    lr: float
    budget_s: float
    steps: int
    stopped: str
    seconds: float


class FineTuneResult(BaseModel):
    tag: str
    champion: str
    alias: str
    plan: AdaptPlan
    adaptation: FineTuneAdaptation
    base_test_macro_f1: float


class FineTuneSplits(BaseModel):
    """What the fine-tune trains, validates and is judged on; one function builds it, for the command and for
    experiments that re-score a fine-tuned version."""

    champion_cfg: TrainConfig
    train_labels: list[HumanExample]
    stop: list[HumanExample]  # the early-stop labels
    replay: list[Review]
    val_replay: list[Review]
    dataset: Dataset  # train = labels + replay, val = early-stop labels + val_replay, test = the frozen base set


def fine_tune_splits(
    settings: Settings,
    begun: Start,
    meta: ModelMetadata,
    full: str,
    early_stop_share: float = 0.2,
) -> FineTuneSplits:
    """The splits of ``--from champion``, from the labels it may fit on (the gate's share left out)."""
    usable = begun.fit_on
    spec = eval_spec_of(meta)
    if spec is None:
        raise AdaptError(f"{full} records no training data, so there is no base set to replay or guard")
    stop = [e for e in usable if in_holdout("early-stop:" + e.key, early_stop_share)]
    train_labels = [e for e in usable if not in_holdout("early-stop:" + e.key, early_stop_share)]
    if not stop or not train_labels:
        raise AdaptError(f"{len(usable)} labels cannot make both a training and an early-stop split")
    champion_cfg = TrainConfig.model_validate(meta.train_config) if meta.train_config else TrainConfig()
    if spec.same_data(champion_cfg):
        base = build_base(spec, settings)
        frozen = base.test
    else:  # a champion that was itself retrained: its frozen set is an older run's test split
        base = build_dataset(champion_cfg, settings.gates, settings.paths.shared_data_dir)
        frozen = build_base(spec, settings).test
    frozen_keys = {text_key(r.text) for r in frozen}
    label_keys = {e.key for e in begun.labels.examples}
    pool = [r for r in base.train if text_key(r.text) not in frozen_keys and text_key(r.text) not in label_keys]
    rng = random.Random(champion_cfg.seed)
    replay_per_label = settings.lifecycle.replay_per_label
    replay = rng.sample(pool, min(len(pool), int(replay_per_label * len(train_labels))))
    train = [*human_reviews(train_labels), *replay]
    # The validation split picks the checkpoint and calibrates it (temperature, class bias). A few dozen labels of a
    # mostly-positive line hold almost no negatives: checkpoint and calibration chosen on them alone stop the model
    # answering negative anywhere. Base validation reviews replayed beside them, at the training ratio, keep every
    # class in view.
    val_pool = [r for r in base.val if text_key(r.text) not in frozen_keys and text_key(r.text) not in label_keys]
    val_replay = rng.sample(val_pool, min(len(val_pool), int(replay_per_label * len(stop))))
    val = [*human_reviews(stop), *val_replay]
    parts = {"train": train, "val": val, "test": frozen}
    ds = Dataset(
        train=train,
        val=val,
        test=frozen,
        stats=base.stats,
        fingerprint=fingerprint(parts),
        split_info={"train": describe(train), "val": describe(val), "frozen_eval": spec.model_dump(mode="json")},
    )
    return FineTuneSplits(
        champion_cfg=champion_cfg,
        train_labels=train_labels,
        stop=stop,
        replay=replay,
        val_replay=val_replay,
        dataset=ds,
    )


def champion_calibration(meta: ModelMetadata, sd: float) -> CalibrationPrior:
    """The champion's calibration as the fine-tune's prior: its served class bias less its decision bias."""
    bias = [c - d for c, d in zip(meta.class_bias, meta.decision_bias, strict=True)]
    return CalibrationPrior(temperature=meta.temperature, class_bias=bias, sd=sd)


def fine_tune_from_champion(
    settings: Settings,
    chain_view: ChainViewFn,
    output_dir: Path,
    budget_s: float = 300.0,
    lr_factor: float = 0.3,
    early_stop_share: float = 0.2,
    log: Callable[[str], object] = print,
    command: str = "",
) -> FineTuneResult:
    t0 = time.monotonic()
    begun = start(settings, "continue from")
    name, registry, the_plan = settings.model.name, begun.registry, begun.plan
    path, meta, full = resolve(begun.champion)
    if the_plan.train < settings.lifecycle.adapt_min_labels:
        raise AdaptError(the_plan.why)
    splits = fine_tune_splits(settings, begun, meta, full, early_stop_share)
    champion_cfg, ds, train_labels = splits.champion_cfg, splits.dataset, splits.train_labels
    cfg = champion_cfg.model_copy(
        update={
            "base_model": str(path),
            "lr": champion_cfg.lr * lr_factor,
            "fixed_decision_bias": list(meta.decision_bias),
            "calibration_prior": champion_calibration(meta, settings.lifecycle.calibration_prior_sd),
            "train_budget_s": budget_s,
            "max_train": None,
            "name": name,
            "eval_every": max(1, min(champion_cfg.eval_every or 50, len(ds.train) // champion_cfg.batch_size or 1)),
        }
    )
    log(
        f"continuing {full} on {len(train_labels)} labels + {len(splits.replay)} replayed base reviews, early stop "
        f"and calibration on {len(splits.stop)} labels + {len(splits.val_replay)} base validation reviews, "
        f"lr {cfg.lr:g}, "
        f"budget {budget_s:.0f}s"
    )
    report = run(cfg, output_dir, settings, chain_view, register=True, log=log, dataset=ds)
    assert report.tag is not None  # register=True
    adaptation = FineTuneAdaptation(
        from_tag=full,
        ts=utc_now(),
        labels_file=str(settings.paths.human_labels),
        labels=len(train_labels),
        early_stop_labels=len(splits.stop),
        held_out=the_plan.held_out,
        replay=len(splits.replay),
        val_replay=len(splits.val_replay),
        class_counts=dict(sorted(Counter(e.label.value for e in train_labels).items())),
        lr=cfg.lr,
        budget_s=budget_s,
        steps=report.training.steps,
        stopped=report.training.stopped,
        seconds=round(time.monotonic() - t0, 1),
    )
    mark_adapted(report.tag, adaptation.model_dump(mode="json"))
    registry.promote(
        "challenger",
        report.tag,
        f"fine-tuned {full} on {len(train_labels)} labels of the product line",
        report=output_dir / "evaluation.json",
        command=command,
    )
    log(f"registered {report.tag} as challenger in {adaptation.seconds:.0f}s ({report.training.stopped})")
    return FineTuneResult(
        tag=report.tag,
        champion=full,
        alias="challenger",
        plan=the_plan,
        adaptation=adaptation,
        base_test_macro_f1=report.test.macro_f1,
    )


def mark_adapted(tag: str, adaptation: dict[str, Any]) -> None:
    """Record the adaptation in a registered version's metadata. Its test figures are on the base split, which
    does not decide an adapted version (the gate's product-line mode does): they are kept as ``base_test_*``, so the
    store's own check (a champion with a lower test macro-F1 needs force) does not judge it on them."""
    import bentoml

    ref = bentoml.models.get(tag)
    stored = ref.info.metadata.get("metrics")
    metrics = stored if isinstance(stored, dict) else {}
    ref.info.metadata["metrics"] = {(f"base_{k}" if k.startswith("test_") else k): v for k, v in metrics.items()}
    ref.info.metadata["adaptation"] = adaptation
    ref.flush()  # type: ignore[no-untyped-call]  # rewrites model.yaml; the weights and the tag stay as they were
