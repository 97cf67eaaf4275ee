"""Hostile inputs for the property tests (every kind of text and non-text a caller may send) and the contract check
each answer must pass, shared by the fast batch property (tests/unit) and the large-input one (tests/stress)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

from fallback.chain import Chain
from sentiment.contract import Prediction, Status
from sentiment.settings import load_settings
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
ANYTHING = st.one_of(ANY_UNICODE, SPECIAL, OBJECTS)


def stand_in_chain(root: Path) -> Chain:
    """The in-process chain over a stand-in model that is never confident, so every tier gets its turn."""
    s = load_settings(paths={"data_dir": root / "var", "reports_dir": root / "reports"})
    return Chain(s, StandInModel(default=(0.4, 0.3, 0.3)), guard=FixedGuard())


def check_contract(pred: Prediction) -> None:
    again = Prediction.model_validate(pred.model_dump())  # the contract's own validators re-run
    assert set(pred.model_dump()) == {"label", "confidence", "status", "reason"}
    assert 0.0 <= again.confidence <= 1.0
    assert (again.status is Status.ok) == (again.reason == "")
    if again.reason:
        assert again.reason_code is not None
