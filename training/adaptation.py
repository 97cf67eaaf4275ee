"""Adapting the champion to the customer's product line from operators' labels, without training.

The served probabilities are ``softmax(z / T + b)``; their logarithm is that up to a per-review constant, so a
temperature ``T2`` and bias ``b2`` fitted on the labels' served log-probabilities compose exactly into a new
calibration of the same weights: ``T' = T * T2`` and ``b' = b / T2 + b2``. Fitting by NLL on the product line's
labels restores its class mix (prior correction); a decision bias is then tuned on the same labels for macro-F1, as
training does on its validation split (:mod:`training.decision`). The result is a new store version (same weights,
new calibration, ``adaptation`` metadata naming what it was adapted on) set as challenger; only the promotion gate
(:mod:`training.promotion`) can make it champion.

Labels held out for the gate (:func:`training.evalset.in_holdout`) are never fitted on.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from sentiment.contract import LABELS
from sentiment.model.aliases import AliasRegistry
from sentiment.model.registry import ModelMetadata, resolve, stored_metadata
from sentiment.records import utc_now
from sentiment.settings import LifecycleSettings, Settings
from training.calibrate import fit, nll
from training.decision import shift, tune_bias
from training.evalset import HumanExample, HumanLabels, eval_spec_of, in_holdout, load_human_labels

AdaptPath = Literal["none", "recalibrate", "fine_tune"]


class AdaptPlan(BaseModel):
    """What the next adaptation would do with the labels there are, and why."""

    labels: int  # reviews with an operator label (merged)
    train: int  # fitted on
    held_out: int  # kept for the promotion gate
    path: AdaptPath
    why: str


def plan(labels: int, held_out: int, cfg: LifecycleSettings) -> AdaptPlan:
    """``sentiment-retrain --auto``: fine-tune from ``fine_tune_min_labels`` labels to fit on, recalibrate below it.
    On unseen product lines (docs/adaptation.md) recalibration lowered macro-F1 at every label budget, while the
    fine-tune from the champion, recalibrated towards the champion's calibration, gained on average at every budget
    measured; so by default (both thresholds equal) there is no recalibrate band. The gate judges whichever path
    runs."""
    train = labels - held_out
    if train < cfg.adapt_min_labels:
        path: AdaptPath = "none"
        why = f"{train} labels to fit on, fewer than {cfg.adapt_min_labels}: label more before adapting"
    elif train < cfg.fine_tune_min_labels:
        path = "recalibrate"
        why = (
            f"{train} labels to fit on (at least {cfg.adapt_min_labels}, fewer than {cfg.fine_tune_min_labels}): "
            "refit the champion's temperature and class bias, seconds, no training"
        )
    else:
        path = "fine_tune"
        why = (
            f"{train} labels to fit on (at least {cfg.fine_tune_min_labels}): continue training the champion on them "
            "plus a replay of the base data, about a minute (recalibrating alone was measured to lower macro-F1 on "
            "unseen product lines)"
        )
    return AdaptPlan(labels=labels, train=train, held_out=held_out, path=path, why=why)


def plan_for(settings: Settings) -> tuple[AdaptPlan, HumanLabels]:
    labels = load_human_labels(settings.paths.human_labels, settings.gates)
    share = settings.lifecycle.human_holdout_share
    held = sum(in_holdout(e.key, share) for e in labels.examples)
    return plan(len(labels.examples), held, settings.lifecycle), labels


class Start(BaseModel):
    """What every adaptation path starts from."""

    registry: AliasRegistry
    champion: str
    plan: AdaptPlan
    labels: HumanLabels  # all of them, the promotion check's held-out share included
    fit_on: list[HumanExample]  # the labels it may fit on: that held-out share left out

    model_config = {"arbitrary_types_allowed": True}


def start(settings: Settings, purpose: str) -> Start:
    """The champion (or why there is none), the plan by label count, and the labels an adaptation may use."""
    name = settings.model.name
    registry = AliasRegistry(name)
    champion = registry.resolve_serving_tag()
    if champion is None:
        raise AdaptError(f"no champion of {name} to {purpose}: train one first (sentiment-train)")
    the_plan, labels = plan_for(settings)
    share = settings.lifecycle.human_holdout_share
    fit_on = [e for e in labels.examples if not in_holdout(e.key, share)]
    return Start(registry=registry, champion=champion, plan=the_plan, labels=labels, fit_on=fit_on)


# --- the fit -------------------------------------------------------------------------------------------------------


class Refit(BaseModel):
    """A calibration on top of the served probabilities, and the served decision bias after it."""

    temperature: float  # T2
    bias: list[float]  # b2
    decision_bias: list[float]


def refit(served: np.ndarray, y: np.ndarray, gate: float, min_coverage: float, decision: bool = True) -> Refit:
    """Fit ``softmax(log p / T2 + b2)`` to the labels by NLL, then (``decision``) a macro-F1 decision bias."""
    logp = np.log(np.clip(served, 1e-12, None))
    t2, b2 = fit(logp, y)
    adapted = shift(np.exp(logp / t2), b2)
    tb = tune_bias(adapted, y, gate, min_coverage) if decision else [0.0] * len(LABELS)
    return Refit(temperature=t2, bias=b2, decision_bias=tb)


def apply(served: np.ndarray, r: Refit) -> np.ndarray:
    """What the adapted version serves, from what the champion serves."""
    logp = np.log(np.clip(served, 1e-12, None))
    return shift(np.exp(logp / r.temperature), [b + d for b, d in zip(r.bias, r.decision_bias, strict=True)])


def compose(meta: ModelMetadata, r: Refit) -> tuple[float, list[float]]:
    """The new version's temperature and class bias: exactly :func:`apply` on the same logits."""
    t2 = r.temperature
    bias = np.asarray(meta.class_bias) / t2 + np.asarray(r.bias) + np.asarray(r.decision_bias)
    return meta.temperature * t2, [round(float(v), 6) for v in bias - bias[0]]


# --- a new version -------------------------------------------------------------------------------------------------


class Adaptation(BaseModel):
    """Stored in the new version's metadata (``adaptation``): how it was made from which version, on what."""

    method: Literal["recalibrate", "fine_tune"]
    from_tag: str
    ts: str
    labels_file: str
    labels: int  # fitted on
    held_out: int
    class_counts: dict[str, int]
    refit: Refit
    nll_before: float  # on the labels fitted on
    nll_after: float
    seconds: float


class AdaptResult(BaseModel):
    tag: str
    champion: str
    alias: str
    plan: AdaptPlan
    adaptation: Adaptation


def recalibrate(
    settings: Settings, log: Callable[[str], object] = print, command: str = "", min_coverage: float = 0.8
) -> AdaptResult:
    """Refit the champion on the product line's labels and register the result as challenger."""
    from sentiment.model.inference import SentimentModel

    t0 = time.monotonic()
    begun = start(settings, "adapt")
    name, registry, the_plan, train = settings.model.name, begun.registry, begun.plan, begun.fit_on
    if the_plan.path == "none":
        raise AdaptError(the_plan.why)
    path, meta, full = resolve(begun.champion)
    log(f"recalibrating {full} on {len(train)} labels ({the_plan.held_out} held out for the gate)")
    served = SentimentModel(path, meta, full, settings.model.scoring_threads).predict([e.text for e in train])
    y = np.array([LABELS.index(e.label.value) for e in train])
    r = refit(served, y, settings.gates.confidence_gate, min_coverage)
    temperature, class_bias = compose(meta, r)
    logp = np.log(np.clip(served, 1e-12, None))
    adaptation = Adaptation(
        method="recalibrate",
        from_tag=full,
        ts=utc_now(),
        labels_file=str(settings.paths.human_labels),
        labels=len(train),
        held_out=the_plan.held_out,
        class_counts=dict(sorted(Counter(e.label.value for e in train).items())),
        refit=r,
        nll_before=nll(logp, y),
        nll_after=nll(logp, y, r.temperature, np.asarray(r.bias)),
        seconds=round(time.monotonic() - t0, 2),  # scoring the labels and the fit; the copy below is disk speed
    )
    spec = eval_spec_of(meta)
    splits = {**meta.splits, **({"frozen_eval": spec.model_dump(mode="json")} if spec else {})}
    new_meta = meta.model_copy(
        update={
            "temperature": round(temperature, 6),
            "class_bias": class_bias,
            "decision_bias": r.decision_bias,
            "splits": splits,
            "metrics": {},  # the champion's test figures are not this version's; the gate measures it
            "adaptation": adaptation.model_dump(mode="json"),
        }
    )
    tag = register_copy(name, path, new_meta)
    registry.promote(
        "challenger",
        tag,
        f"recalibrated {full} on {len(train)} labels of the product line",
        command=command,
    )
    log(
        f"registered {tag} as challenger ({adaptation.seconds:.1f}s to score and fit, "
        f"{time.monotonic() - t0:.1f}s in all): T {meta.temperature} -> {temperature:.4f}, bias {class_bias}"
    )
    return AdaptResult(tag=tag, champion=full, alias="challenger", plan=the_plan, adaptation=adaptation)


class AdaptError(Exception):
    """Nothing to adapt (no champion, too few labels); the message says why."""


def register_copy(name: str, source: Path, meta: ModelMetadata) -> str:
    """A new store version holding ``source``'s files (weights, vocabulary, verified ONNX) under ``meta``."""
    import bentoml

    with bentoml.models.create(
        name,
        metadata=stored_metadata(meta),
        labels={"task": "sentiment", "profile": meta.profile or "custom", "adapted": "true"},
    ) as ref:
        shutil.copytree(source, Path(ref.path), dirs_exist_ok=True)
    return str(ref.tag)
