"""Semantic drift: a kernel two-sample test (MMD, RBF kernel) on sentence embeddings, with a permutation p-value.

A cosine distance between the two mean embeddings only sees a shift of the centre; MMD with a characteristic
kernel compares whole distributions (a new product category can keep the mean and change the spread), and the
permutation test gives a p-value that holds its nominal false-alarm rate at any sample size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel


class MMDResult(BaseModel):
    mmd2: float
    p_value: float
    bandwidth: float
    n_reference: int
    n_current: int
    permutations: int


def embed(texts: Sequence[str], model_path: str, max_length: int = 128, batch_size: int = 32) -> np.ndarray:
    """Mean-pooled, L2-normalised encoder embeddings (the sentence-transformers recipe for MiniLM)."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModel, AutoTokenizer

    from sentiment.preprocess import normalize

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc="embedding", unit=" batch", leave=False):
            idx = order[start : start + batch_size]
            enc = tok(
                [normalize(texts[i]).text for i in idx],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=1).numpy()
    return out


def mmd_test(x: np.ndarray, y: np.ndarray, permutations: int = 500, seed: int = 0) -> MMDResult:
    """Biased MMD² with an RBF kernel (median-heuristic bandwidth) and its permutation p-value."""
    z = np.vstack([x, y]).astype(np.float64)
    n, m = len(x), len(y)
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    off = d2[np.triu_indices(n + m, k=1)]
    bandwidth = float(np.median(off[off > 0])) if np.any(off > 0) else 1.0
    k = np.exp(-d2 / bandwidth)
    # MMD² = s^T K s with s = +1/n on the reference rows and -1/m on the current ones.
    s0 = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(s0) for _ in range(permutations)])
    observed = float(s0 @ k @ s0)
    null = np.einsum("ij,ij->i", perms @ k, perms)
    p = (1 + int(np.sum(null >= observed))) / (1 + permutations)
    return MMDResult(
        mmd2=observed, p_value=p, bandwidth=bandwidth, n_reference=n, n_current=m, permutations=permutations
    )
