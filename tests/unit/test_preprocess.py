"""Shared preprocessing and input gates: the same function cleans training and serving text."""

from __future__ import annotations

import pytest

from sentiment.contract import Prediction, Reason
from sentiment.preprocess import bad_char_ratio, normalize
from sentiment.settings import GateSettings
from sentiment.validation import Validated, validate


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Works great &amp; sounds clean", "Works great & sounds clean"),
        ("Line one<br/>line two<br />three", "Line one line two three"),
        ("Double &amp;amp; escaped", "Double & escaped"),
        ("<p>Nice <b>strap</b></p>", "Nice strap"),
        ("zero\u200bwidth", "zerowidth"),
        ("  lots   of\n\nspace ", "lots of space"),
    ],
)
def test_markup_and_entities_are_normalised(raw, clean):
    out = normalize(raw)
    assert out.text == clean and out.changed


def test_plain_text_is_untouched_and_not_flagged():
    out = normalize("A plain review, 5 < 6 and 7 > 3.")
    assert out.text == "A plain review, 5 < 6 and 7 > 3." and not out.had_markup and not out.changed


def test_markup_flag_reaches_validation():
    v = validate("Good &amp; cheap", GateSettings())
    assert isinstance(v, Validated) and v.had_markup and v.text == "Good & cheap"


def test_bad_char_ratio_counts_replacements_and_controls():
    assert bad_char_ratio("fine text") == 0.0
    assert bad_char_ratio("ab\ufffd\ufffd") == 0.5
    assert bad_char_ratio("tab\tand\nnewline") == 0.0


def test_encoding_gate_threshold_is_configurable():
    text = "Good value for money overall" + "\ufffd" * 2  # 2/30 = 6.7 % bad
    assert validate(text, GateSettings()).reason_code is Reason.bad_encoding  # type: ignore[union-attr]
    assert isinstance(validate(text, GateSettings(max_bad_char_ratio=0.10)), Validated)


def test_length_is_measured_after_normalisation():
    # "<br/><br/>ok" is only 2 characters of text once the markup is gone.
    assert validate("<br/><br/>ok", GateSettings()).reason_code is Reason.too_short  # type: ignore[union-attr]


def test_length_limits_are_configurable():
    assert isinstance(validate("Fine!", GateSettings(min_chars=5)), Validated)
    assert validate("Fine!", GateSettings(min_chars=6)).reason_code is Reason.too_short  # type: ignore[union-attr]
    assert validate("x" * 101, GateSettings(max_chars=100)).reason_code is Reason.too_long  # type: ignore[union-attr]


def test_emoji_count_towards_the_length_gate():
    gates = GateSettings()
    assert isinstance(validate("👎👎👎", gates), Validated)
    assert isinstance(validate("👍", gates), Validated)
    short = validate("ok", gates)
    assert isinstance(short, Prediction) and short.reason_code is Reason.too_short
    assert isinstance(validate("👍", gates.model_copy(update={"min_emoji": 2})), Prediction)
