"""Property-based: whatever arrives in a batch, ``classify_many`` answers every item, in order, with a valid
contract and never raises. Single inputs up to 1 MB are in tests/stress/test_hostile_inputs.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fallback.chain import Chain
from tests.support.hostile import ANYTHING, check_contract, stand_in_chain


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return stand_in_chain(tmp_path_factory.mktemp("props"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raws=st.lists(ANYTHING, max_size=6))
def test_batches_answer_every_item_in_order(chain, raws):
    out = chain.classify_many(raws)
    assert len(out) == len(raws)
    for traced in out:
        check_contract(traced.prediction)
