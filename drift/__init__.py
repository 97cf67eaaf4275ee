"""Drift detection: seven signals comparing a reference window of reviews with a current one.

Runs on its own (``scripts/simulate_drift.py``), never inside the service; the dashboard reads its JSON.
"""
