"""Property-based: whatever arrives, ``classify`` returns a valid contract and never raises."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentiment.contract import Prediction, Status
from tests.support.doubles import FixedGuard, StandInModel

ANY_UNICODE = st.text(alphabet=st.characters(exclude_categories=()), max_size=300)  # surrogates included
SPECIAL = st.sampled_from(
    [
        "😀😀😀😀😀😀",  # emoji only
        "هذا المنتج رائع جدا وأنا أحبه",  # right-to-left
        "\u200b\u200b\u200bgreat\u200b\u200b",  # zero-width
        "\ud800\udfff\ud83d broken surrogates",
        "Great product" + "\u202e" * 3,  # bidi override
        "a" * 1_000_000,  # 1 MB
        "Love it! " * 100_000,
        "&amp;" * 2000,
        "<br/>" * 1200,
        "\x00" * 10,
    ]
)
OBJECTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=300),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    from fallback.chain import Chain
    from sentiment.settings import load_settings

    root = tmp_path_factory.mktemp("props")
    s = load_settings(paths={"data_dir": root / "var", "reports_dir": root / "reports"})
    return Chain(s, StandInModel(default=(0.4, 0.3, 0.3)), guard=FixedGuard())


def _check(pred: Prediction) -> None:
    again = Prediction.model_validate(pred.model_dump())  # the contract's own validators re-run
    assert set(pred.model_dump()) == {"label", "confidence", "status", "reason"}
    assert 0.0 <= again.confidence <= 1.0
    assert (again.status is Status.ok) == (again.reason == "")
    if again.reason:
        assert again.reason_code is not None


@pytest.mark.slow  # 150 examples, some of them 1 MB
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(ANY_UNICODE, SPECIAL, OBJECTS))
def test_classify_never_raises_and_returns_the_contract(chain, raw):
    _check(chain.classify(raw))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raws=st.lists(st.one_of(ANY_UNICODE, SPECIAL, OBJECTS), max_size=6))
def test_batches_answer_every_item_in_order(chain, raws):
    out = chain.classify_many(raws)
    assert len(out) == len(raws)
    for traced in out:
        _check(traced.prediction)
