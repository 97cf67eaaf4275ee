"""Benchmarks, evaluations and probes that produce the figures in ``docs/``: run with ``python -m experiments.NAME``.

Not user commands and not installed; nothing in the product imports them.
"""
