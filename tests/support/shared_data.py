"""The one check for tests that read the shared review data (``../shared/data`` beside the checkout): without it they
skip on a developer's machine, but fail in CI, so a CI run can never pass having silently run none of them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

TRUE = {"1", "true", "yes", "on"}


def in_ci(environ: Mapping[str, str]) -> bool:
    """CI services set ``CI`` (``true`` on GitHub and GitLab, ``1`` on some others); ``.ci/run`` sets it too."""
    return environ.get("CI", "").strip().lower() in TRUE


def require_shared_data(shared_dir: Path, environ: Mapping[str, str]) -> Path:
    """``shared_dir`` when it exists; otherwise skip the test, or fail it under CI."""
    if shared_dir.is_dir():
        return shared_dir
    message = f"shared data not found at {shared_dir} (the review data beside the checkout)"
    if in_ci(environ):
        pytest.fail(f"{message}: CI must run every test that needs it", pytrace=False)
    pytest.skip(message)
