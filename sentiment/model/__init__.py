"""Tier 1: the fine-tuned transformer (training, calibration, evaluation, registry, inference)."""
