"""The shared-data check: missing data skips a test on a developer's machine but fails it under CI, so a CI run can
never pass having silently skipped every test that reads the review data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.shared_data import in_ci, require_shared_data

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("value", ["true", "True", "1", "yes", " TRUE "])
def test_missing_data_fails_under_ci(tmp_path: Path, value: str) -> None:
    with pytest.raises(pytest.fail.Exception, match="CI must run every test that needs it"):
        require_shared_data(tmp_path / "absent", {"CI": value})


@pytest.mark.parametrize("environ", [{}, {"CI": ""}, {"CI": "false"}, {"CI": "0"}])
def test_missing_data_skips_outside_ci(tmp_path: Path, environ: dict[str, str]) -> None:
    assert not in_ci(environ)
    with pytest.raises(pytest.skip.Exception, match="shared data not found"):
        require_shared_data(tmp_path / "absent", environ)


def test_present_data_is_returned_in_ci_and_out(tmp_path: Path) -> None:
    assert require_shared_data(tmp_path, {"CI": "true"}) == tmp_path
    assert require_shared_data(tmp_path, {}) == tmp_path


def test_the_fixture_is_wired_through_conftest(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """The ``shared_data`` fixture of tests/conftest.py, in a session of its own: with the data folder missing
    (settings pointed elsewhere) a test needing it is skipped, and errors once ``CI`` is set."""
    pytester.makeconftest("from tests.conftest import shared_data  # noqa: F401\n")
    pytester.makepyfile("def test_reads(shared_data):\n    assert shared_data.is_dir()\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTIMENT_PATHS__SHARED_DATA_DIR", str(tmp_path / "absent"))
        mp.delenv("CI", raising=False)
        pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(skipped=1)
        mp.setenv("CI", "true")
        pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(errors=1)
        mp.setenv("SENTIMENT_PATHS__SHARED_DATA_DIR", str(tmp_path))
        pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
