"""Batch scoring with Ray Data (the ``sentiment-score`` command): files in, the same answers as the service out."""
