"""A star head: five logits, one per star rating, read as the contract's three classes.

Why a 5-class head mapped to three: a 2-star and a 1-star review are both negative, but a head that
must tell them apart learns the ordinal scale the flat labels throw away, and may learn where 3 stars sits between
them. The served contract stays three classes: p(negative) = p(1 star) + p(2 stars), and so on. A class's logit is
therefore the log-sum-exp of its stars' logits, which is exact (softmax over the grouped logits equals the grouped
softmax), so calibration, the decision bias and every report see three logits as from any other model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sentiment.contract import LABELS

N_STARS = 5
# Star indices (stars - 1) per class, in LABELS order: the contract's mapping (sentiment.contract.star_to_label).
STAR_GROUPS: tuple[tuple[int, ...], ...] = ((0, 1), (2,), (3, 4))
STAR_CLASS = tuple(next(c for c, g in enumerate(STAR_GROUPS) if s in g) for s in range(N_STARS))
STAR_NAMES = tuple(f"{s} star{'s' if s > 1 else ''}" for s in range(1, N_STARS + 1))


def class_logits(logits: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    """(N, 3) class logits from a 3-class head (unchanged) or a star head (grouped log-sum-exp)."""
    z = np.asarray(logits)
    if z.shape[-1] == len(LABELS):
        return z
    if z.shape[-1] != N_STARS:
        raise ValueError(f"a model with {z.shape[-1]} outputs: want {len(LABELS)} classes or {N_STARS} stars")
    out = np.empty((z.shape[0], len(LABELS)), dtype=z.dtype)
    for c, group in enumerate(STAR_GROUPS):
        part = z[:, list(group)].astype(np.float64)
        top = part.max(axis=1, keepdims=True)
        out[:, c] = (top + np.log(np.exp(part - top).sum(axis=1, keepdims=True)))[:, 0]
    return out


def star_head_targets(stars: Sequence[int | None], classes: Sequence[int]) -> list[list[float]]:
    """Training targets for a star head: the review's star; a review with a class but no stars (a human label)
    spreads its weight evenly over its class's stars, so it teaches the class without inventing a rating."""
    out = []
    for s, c in zip(stars, classes, strict=True):
        t = [0.0] * N_STARS
        if s is not None and 1 <= s <= N_STARS:
            t[s - 1] = 1.0
        else:
            for i in STAR_GROUPS[c]:
                t[i] = 1.0 / len(STAR_GROUPS[c])
        out.append(t)
    return out
