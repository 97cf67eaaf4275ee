"""The prior-shift probe's EM recovers a stream's class mix from calibrated probabilities alone, so its negative
result on the LOSO folds is about the model's calibration under domain shift, not about the estimator."""

from __future__ import annotations

import numpy as np

from experiments.probe_prior_shift import em_prior, reweight


def test_em_recovers_a_shifted_class_mix_from_exact_posteriors() -> None:
    rng = np.random.default_rng(0)
    train, stream = np.array([0.2, 0.1, 0.7]), np.array([0.04, 0.06, 0.9])
    means = np.array([[-1.5, 0.0], [0.0, 1.2], [1.5, 0.0]])  # three overlapping 2-D Gaussians, unit variance
    y = rng.choice(3, size=20_000, p=stream)
    x = means[y] + rng.normal(size=(len(y), 2))
    lik = np.exp(-0.5 * ((x[:, None, :] - means[None]) ** 2).sum(-1))
    posterior_at_train_mix = lik * train / (lik * train).sum(1, keepdims=True)  # a perfectly calibrated model
    est = em_prior(posterior_at_train_mix, train)
    assert np.abs(est - stream).max() < 0.01
    assert np.abs(posterior_at_train_mix.mean(0) - stream).max() > 0.05  # the naive average is biased
    adapted = reweight(posterior_at_train_mix, train, est)
    assert (adapted.argmax(1) == y).mean() > (posterior_at_train_mix.argmax(1) == y).mean()
