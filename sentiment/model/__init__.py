"""Tier 1 as serving sees it: the store, aliases, inference on ONNX Runtime or PyTorch, hot-swapped versions.

Training lives in :mod:`training`; this package is what the Bento ships.
"""
