"""Retraining: the base data plus what operators labelled, trained by the same pipeline, registered as challenger.

Never champion: only the promotion gate (:mod:`training.promotion`) or an operator moves the champion. The
frozen evaluation set is the current champion's (so the gate compares like with like), or this run's own test
split when no champion records one; its reviews and the held-out human labels are removed from training and
validation, and the new version records the same frozen set so later runs keep using it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from sentiment.model.aliases import AliasRegistry
from sentiment.model.registry import resolve
from sentiment.settings import Settings
from training.config import TrainConfig
from training.data import Dataset, Review, build_dataset, describe, fingerprint
from training.evalset import (
    EvalSpec,
    HumanLabels,
    HumanLabelStats,
    build_base,
    check_fingerprint,
    data_config,
    eval_spec_of,
    human_reviews,
    in_holdout,
    load_human_labels,
    text_key,
)
from training.pipeline import ChainViewFn, Report, run


class RetrainData(BaseModel):
    """How the training set was made (``retrain.json`` and the model's ``splits``)."""

    human_labels: HumanLabelStats
    holdout_share: float
    human_train: int  # human-labelled reviews added to training
    human_holdout: int  # kept for the gate, never trained on
    human_in_eval: int  # human-labelled reviews that are frozen-evaluation or test reviews: never trained on
    base_dropped: dict[str, int]  # base rows left out of train/val: frozen evaluation review, human-labelled
    base_fingerprint: str
    frozen_eval: EvalSpec


def retrain_dataset(
    cfg: TrainConfig, settings: Settings, spec: EvalSpec | None, labels: HumanLabels
) -> tuple[Dataset, RetrainData]:
    """``build_dataset(cfg)`` with human labels in training, the frozen set and held-out labels kept out."""
    base = build_dataset(cfg, settings.gates, settings.paths.shared_data_dir)
    if spec is None:
        spec = EvalSpec(config=data_config(cfg), fingerprint=base.fingerprint)
    frozen = check_fingerprint(spec, base).test if spec.same_data(cfg) else build_base(spec, settings).test
    eval_keys = {text_key(r.text) for r in [*frozen, *base.test]}
    share = settings.lifecycle.human_holdout_share
    human_keys = {e.key for e in labels.examples}
    dropped = {"frozen_eval": 0, "human_labelled": 0}

    def keep(r: Review) -> bool:
        k = text_key(r.text)
        if k in eval_keys:
            dropped["frozen_eval"] += 1
        elif k in human_keys:  # the human label replaces the star label (or, if held out, the review goes)
            dropped["human_labelled"] += 1
        return k not in eval_keys and k not in human_keys

    train, val = [r for r in base.train if keep(r)], [r for r in base.val if keep(r)]
    in_eval = [e for e in labels.examples if e.key in eval_keys]
    holdout = [e for e in labels.examples if e.key not in eval_keys and in_holdout(e.key, share)]
    human_train = [e for e in labels.examples if e.key not in eval_keys and not in_holdout(e.key, share)]
    train += human_reviews(human_train)
    parts = {"train": train, "val": val, "test": base.test}
    info = RetrainData(
        human_labels=labels.stats,
        holdout_share=share,
        human_train=len(human_train),
        human_holdout=len(holdout),
        human_in_eval=len(in_eval),
        base_dropped=dropped,
        base_fingerprint=base.fingerprint,
        frozen_eval=spec,
    )
    split_info = {
        **base.split_info,
        "train": describe(train),
        "val": describe(val),
        **info.model_dump(mode="json", include={"base_fingerprint", "frozen_eval"}),
        "human": info.model_dump(mode="json", exclude={"base_fingerprint", "frozen_eval"}),
    }
    ds = Dataset(
        train=train, val=val, test=base.test, stats=base.stats, fingerprint=fingerprint(parts), split_info=split_info
    )
    return ds, info


class RetrainResult(BaseModel):
    """What ``sentiment-retrain`` prints as its last JSON line."""

    tag: str
    champion: str | None
    alias: str  # "challenger", or "champion" when the store had none (bootstrap)
    test_macro_f1: float
    data: RetrainData
    report_dir: str


def retrain(
    cfg: TrainConfig,
    output_dir: Path,
    settings: Settings,
    chain_view: ChainViewFn,
    log: Callable[[str], object] = print,
    command: str = "",
) -> tuple[RetrainResult, Report]:
    """Build the data, train, register, and point ``challenger`` at the new version."""
    registry = AliasRegistry(cfg.name)
    champion = registry.resolve_serving_tag()
    spec = eval_spec_of(resolve(champion)[1]) if champion else None
    labels = load_human_labels(settings.paths.human_labels, settings.gates)
    ds, info = retrain_dataset(cfg, settings, spec, labels)
    log(
        f"human labels: {labels.stats.reviews} reviews ({labels.stats.conflicts} conflicts, "
        f"{labels.stats.duplicates} duplicates merged): {info.human_train} train, {info.human_holdout} held out, "
        f"{info.human_in_eval} in the evaluation set; frozen evaluation set {info.frozen_eval.fingerprint}"
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "retrain.json").write_text(json.dumps(info.model_dump(mode="json"), indent=1))
    report = run(cfg, output_dir, settings, chain_view, register=True, log=log, dataset=ds)
    assert report.tag is not None  # register=True
    alias = "challenger"
    if registry.state().champion == report.tag:  # an empty store: registration bootstrapped it
        alias = "champion"
    else:
        registry.promote(
            "challenger",
            report.tag,
            f"retrained with {info.human_train} human labels (profile {cfg.profile})",
            report=output_dir / "evaluation.json",
            command=command,
        )
    result = RetrainResult(
        tag=report.tag,
        champion=champion,
        alias=alias,
        test_macro_f1=report.test.macro_f1,
        data=info,
        report_dir=str(output_dir),
    )
    return result, report
