"""Making tier-1 models: data, fine-tuning, calibration, evaluation, retraining and the promotion check.

Nothing here is imported by serving code (``sentiment``, ``fallback``, ``runners``, ``api``), so the Bento ships
without it; the models it registers are read back through :mod:`sentiment.model`.
"""
