"""Helpers the tests call directly (doubles, data paths, the tiny model); pytest fixtures live in conftest.py files."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
