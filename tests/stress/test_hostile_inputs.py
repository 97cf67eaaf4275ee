"""Property-based: whatever single input arrives (any unicode, 1 MB texts, non-text objects), ``classify`` returns
a valid contract and never raises. Slow: many examples, some of them 1 MB."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from fallback.chain import Chain
from tests.support.hostile import ANYTHING, check_contract, stand_in_chain

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return stand_in_chain(tmp_path_factory.mktemp("props"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=ANYTHING)
def test_classify_never_raises_and_returns_the_contract(chain, raw):
    check_contract(chain.classify(raw))
