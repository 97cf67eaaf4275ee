"""Fine-tuning loop: any HF checkpoint -> 3-class sentiment classifier.

- Batches are length-sorted within shuffled pools and padded per batch (dynamic padding): on CPU, padding
  tokens are most of the cost of naive batching on reviews whose lengths span two orders of magnitude.
- Imbalance: class-weighted cross-entropy, weights = inverse class frequency in the training set (normalised
  to mean 1). When the training set is capped (quick profile) the cap itself is class-balanced
  (:func:`training.data.balanced_cap`) and the weights only correct what is left.
- Early stopping on validation macro-F1 (the spec's headline metric), keeping the best weights.
- A fixed seed gives the same model twice (same data order, same init of the new head, deterministic kernels).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel
from sklearn.metrics import f1_score
from tqdm import tqdm

from sentiment.contract import LABELS
from sentiment.model.stars import STAR_CLASS, STAR_NAMES, class_logits, star_head_targets
from training.config import TrainConfig
from training.data import Review

if TYPE_CHECKING:
    from sentiment.model.inference import Floats


class EvalPoint(BaseModel):
    step: int
    epoch: float
    train_loss: float
    val_macro_f1: float


class TrainResult(BaseModel):
    steps: int
    best_step: int
    best_val_macro_f1: float
    history: list[EvalPoint]
    class_weights: list[float]
    seconds: float
    stopped: str  # "completed" | "early_stopping" | "time_budget"


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def class_weights(labels: Sequence[int], n_classes: int = len(LABELS)) -> list[float]:
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=n_classes).astype(float)
    w = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    weights: list[float] = (w / w[w > 0].mean()).round(4).tolist()
    return weights


def star_targets(train: Sequence[Review], star_soft: float) -> list[list[float]]:
    """Training targets from the star scale: 2 and 4 stars lean towards neutral by ``star_soft`` (an ordinal
    prior: a 4-star review is less surely positive than a 5-star one); reviews without stars keep their label."""
    out = []
    for r in train:
        t = [0.0] * len(LABELS)
        t[r.y] = 1.0
        if r.stars in (2, 4) and star_soft > 0:
            t[r.y], t[LABELS.index("neutral")] = 1.0 - star_soft, star_soft
        out.append(t)
    return out


def length_batches(lengths: Sequence[int], batch_size: int, rng: random.Random, pool: int = 50) -> list[list[int]]:
    """Shuffle, sort by length inside pools of ``pool`` batches, cut, then shuffle the batch order."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    batches: list[list[int]] = []
    step = batch_size * pool
    for start in range(0, len(idx), step):
        chunk = sorted(idx[start : start + step], key=lambda i: lengths[i])
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def load_base(
    base_model: str,
    device: str = "cpu",
    keep_layers: Sequence[int] = (),
    head: Literal["classes", "stars"] | None = "classes",
) -> tuple[Any, Any]:
    """Tokenizer and a 3-label (or, ``head="stars"``, 5-star) head on any HF checkpoint (local path or hub name): a
    fresh head on an encoder, the trained one on a sentiment checkpoint of that head; ``head=None`` keeps whatever
    head the checkpoint has (a trained model, as it is); ``keep_layers`` makes a shallower student of it."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if head is None:
        model = AutoModelForSequenceClassification.from_pretrained(base_model)
    else:
        names = STAR_NAMES if head == "stars" else LABELS
        model = AutoModelForSequenceClassification.from_pretrained(
            base_model,
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={lab: i for i, lab in enumerate(names)},
            ignore_mismatched_sizes=True,
        )
    if keep_layers:
        keep_encoder_layers(model, keep_layers)
    return tokenizer, model.to(device)


def keep_encoder_layers(model: Any, keep: Sequence[int]) -> None:
    """Drop all transformer blocks but ``keep`` (in that order), in place, and say so in the config so the saved
    checkpoint reloads as the smaller model. BERT-like (``num_hidden_layers``) and DistilBERT (``n_layers``)."""
    import torch

    attr = "num_hidden_layers" if hasattr(model.config, "num_hidden_layers") else "n_layers"
    depth = getattr(model.config, attr)
    blocks = next((m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == depth), None)
    if blocks is None or not keep or not all(0 <= i < depth for i in keep) or len(set(keep)) < len(keep):
        raise ValueError(f"keep_layers {list(keep)}: want distinct layers of the model's {depth}")
    kept = [blocks[i] for i in keep]
    del blocks[len(kept) :]
    for i, block in enumerate(kept):
        blocks[i] = block
    setattr(model.config, attr, len(kept))


def teacher_targets(cfg: TrainConfig, texts: Sequence[str]) -> list[list[float]]:
    """The teacher's class probabilities at ``distill_temperature``: the student's training targets."""
    from sentiment.model.inference import softmax

    assert cfg.teacher is not None
    tokenizer, teacher = load_base(cfg.teacher, cfg.device, head=None)  # its own head: a star teacher keeps its five
    logits = predict_logits(teacher, tokenizer, texts, cfg.max_length, device=cfg.device, desc="teacher")
    targets: list[list[float]] = softmax(logits / cfg.distill_temperature).tolist()
    return targets


def param_groups(model: Any, lr: float, head_lr_mult: float) -> list[dict[str, Any]]:
    """The pretrained encoder at ``lr``; the freshly initialised head faster, or short CPU runs barely move it."""
    encoder = getattr(model, model.base_model_prefix, None)
    if encoder is None:
        return [{"params": list(model.parameters()), "lr": lr}]
    encoder_ids = {id(p) for p in encoder.parameters()}
    head = [p for p in model.parameters() if id(p) not in encoder_ids]
    groups = [{"params": [p for p in model.parameters() if id(p) in encoder_ids], "lr": lr}]
    return groups + ([{"params": head, "lr": lr * head_lr_mult}] if head else [])


def predict_logits(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    batch_size: int = 64,
    device: str = "cpu",
    desc: str | None = None,
) -> Floats:
    """Class logits (N, 3) in input order (a star head's grouped, :mod:`sentiment.model.stars`); length-sorted
    batches so short reviews are not padded to long ones."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=desc is None, leave=False):
            idx = order[start : start + batch_size]
            enc = tokenizer(
                [texts[i] for i in idx], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            ).to(device)
            out[idx] = model(**enc).logits.float().cpu().numpy()
    return class_logits(out)


def macro_f1(y_true: Sequence[int], logits: Floats) -> float:
    return float(f1_score(y_true, logits.argmax(1), average="macro", labels=list(range(len(LABELS))), zero_division=0))


def _padded_batches(
    encoded: list[list[int]], labels: Sequence[Any], cfg: TrainConfig, rng: random.Random, pad_id: int
) -> Iterator[tuple[float, dict[str, list[list[int]]], list[Any]]]:
    lengths = [len(e) for e in encoded]
    for epoch in range(cfg.epochs):
        batches = length_batches(lengths, cfg.batch_size, rng)
        for b, idx in enumerate(batches):
            width = max(lengths[i] for i in idx)
            ids = [encoded[i] + [pad_id] * (width - lengths[i]) for i in idx]
            mask = [[1] * lengths[i] + [0] * (width - lengths[i]) for i in idx]
            yield epoch + (b + 1) / len(batches), {"input_ids": ids, "attention_mask": mask}, [labels[i] for i in idx]


def fine_tune(cfg: TrainConfig, train: Sequence[Review], val: Sequence[Review], out_dir: Path) -> TrainResult:
    """Train, keep the best checkpoint by validation macro-F1, save it (HF format + tokenizer) to ``out_dir``."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    rng = random.Random(cfg.seed)
    tokenizer, model = load_base(cfg.base_model, cfg.device, cfg.keep_layers, cfg.head)
    texts = [r.text for r in train]
    labels = [r.y for r in train]
    # Class ids (the flat labels) or probabilities (a teacher's, from the stars, or over a star head's five).
    targets: Sequence[Any] = (
        teacher_targets(cfg, texts)
        if cfg.teacher
        else star_head_targets([r.stars for r in train], labels)
        if cfg.head == "stars"
        else star_targets(train, cfg.star_soft)
        if cfg.star_soft
        else labels
    )
    encoded = tokenizer(texts, truncation=True, max_length=cfg.max_length)["input_ids"]
    weights = class_weights(labels)
    if cfg.head == "stars":  # each star weighs what its class does: the classes keep the flat head's balance
        weights = [weights[c] for c in STAR_CLASS]
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32, device=cfg.device))
    steps_per_epoch = -(-len(train) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    eval_every = cfg.eval_every or steps_per_epoch
    optimizer = torch.optim.AdamW(param_groups(model, cfg.lr, cfg.head_lr_mult), weight_decay=cfg.weight_decay)
    schedule = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_frac * total), total)
    val_texts, val_y = [r.text for r in val], [r.y for r in val]

    best_f1, best_step, best_state = -1.0, 0, None
    history: list[EvalPoint] = []
    bad_checks, running, seen, step, stopped = 0, 0.0, 0, 0, "completed"
    start = time.monotonic()
    bar = tqdm(total=total, desc=f"fine-tune {Path(cfg.base_model).name}", unit=" step")
    for epoch_pos, batch, y in _padded_batches(encoded, targets, cfg, rng, tokenizer.pad_token_id or 0):
        model.train()
        enc = {k: torch.tensor(v, device=cfg.device) for k, v in batch.items()}
        loss = loss_fn(model(**enc).logits, torch.tensor(y, device=cfg.device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        running, seen = running + loss.item(), seen + 1
        bar.update(1)
        bar.set_postfix(loss=f"{running / seen:.3f}", best_f1=f"{max(best_f1, 0):.3f}")
        out_of_time = cfg.train_budget_s is not None and time.monotonic() - start > cfg.train_budget_s
        just_checked = bool(history) and history[-1].step == step - 1
        if step % eval_every == 0 or step == total or (out_of_time and not just_checked):
            f1 = macro_f1(val_y, predict_logits(model, tokenizer, val_texts, cfg.max_length, device=cfg.device))
            history.append(EvalPoint(step=step, epoch=round(epoch_pos, 3), train_loss=running / seen, val_macro_f1=f1))
            running, seen = 0.0, 0
            if f1 > best_f1:
                best_f1, best_step, bad_checks = f1, step, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_checks += 1
            bar.write(f"step {step}/{total}  val macro-F1 {f1:.4f}  (best {best_f1:.4f} @ {best_step})")
            if bad_checks >= cfg.patience:
                stopped = "early_stopping"
                break
        if out_of_time:
            stopped = "time_budget"
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return TrainResult(
        steps=step,
        best_step=best_step,
        best_val_macro_f1=best_f1,
        history=history,
        class_weights=weights,
        seconds=round(time.monotonic() - start, 1),
        stopped=stopped,
    )
