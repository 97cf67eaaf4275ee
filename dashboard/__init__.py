"""Operator dashboard (spec section 7): reads the files the service writes, never the service's internals."""
