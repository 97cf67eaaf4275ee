"""PII masking: each kind masked, review look-alikes kept, stable placeholders, and floors on a labelled sample."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from experiments.pii_sample import DECOYS, score, synthetic_sample
from sentiment.jsonl import iter_records
from sentiment.pii import PiiKind, PiiMasker, luhn_ok, mask, mask_counts, text_masker
from sentiment.settings import PrivacySettings, Settings

MASKED = [
    ("Mail me at john.smith87@gmail.com for photos.", "Mail me at [EMAIL] for photos."),
    ("US support (415) 555-2671 never answers", "US support [PHONE] never answers"),
    ("call 415-555-2671 or 1-800-275-2273.", "call [PHONE] or [PHONE]."),
    ("my cell +91 98480 22338, or 9848022338", "my cell [PHONE], or [PHONE]"),
    ("London office +44 20 7946 0958 helped", "London office [PHONE] helped"),
    ("charged 4111 1111 1111 1111 twice", "charged [CARD] twice"),
    ("Amex 3782-822463-10005 and 5555555555554444", "Amex [CARD] and [CARD]"),
    ("see https://www.shop.com/p/123?ref=x, then", "see [URL], then"),
    ("(www.myblog.net/review) and amazon.com/dp/B00ABC1234.", "([URL]) and [URL]."),
    ("router at 192.168.1.240 crashed", "router at [IP] crashed"),
    ("order #123-4567890-1234567 lost", "order #[ORDER] lost"),
    ("Flipkart OD123456789012345678 came late", "Flipkart [ORDER] came late"),
    ("Order no - 1127326452 Ordered rajma rice", "Order no - [ORDER] Ordered rajma rice"),
]

KEPT = [
    "Only $19.99 and Rs. 1,299 at the shop, 4.5 out of 5.",
    "The SM57 and KX-TG6512 (ASIN B000068O3J) arrived 12/25/2013, 2013-05-04.",
    "5/5 stars, 10/10, 3.5/5, would buy again in 2014.",
    "Albums from 1998 2001 and 2005 are better.",
    'The manual\'s title is "67000 - 67007 g/oz", model 2125550199-B.',
    "Firmware 1.0.5.0 and version 2.1 fixed it.",
    "ISBN 978-0-13-468599-1, 9780131103627 or 0-13-110362-8.",
    "The box is 12 x 8 x 3 inches, ships from 85340, arrived at 10:30 pm.",
    "Not a phone: 123-456-7890 or 1234567890 or 555-1234.",
    "Amazon.com sells it cheaper than bestbuy.com.",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_each_kind_is_masked_and_the_words_around_it_kept(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_review_text_is_left_alone(text: str) -> None:
    assert mask(text) == text


def test_card_numbers_must_pass_the_luhn_check() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert mask("card 4111 1111 1111 1112 failed") == "card 4111 1111 1111 1112 failed"
    assert mask("card 4111-1111-1111-1111 failed") == "card [CARD] failed"


def test_the_tail_of_a_long_number_is_not_taken_for_a_phone() -> None:
    # 4151 8527 3108 is not Luhn-valid as a card, and "8527 3108 ..." must not become a phone number either.
    text = "serial 4151 9173 6719 9476 on the box"
    assert not luhn_ok("4151917367199476")
    assert mask(text) == text
    assert mask("call 415 555 2671 2 times") == "call [PHONE] 2 times"


def test_counts_say_what_was_found() -> None:
    text, counts = mask_counts("a@b.com, c@d.org, 415-555-2671 and 4.5 stars")
    assert text == "[EMAIL], [EMAIL], [PHONE] and 4.5 stars"
    assert counts == {PiiKind.EMAIL: 2, PiiKind.PHONE: 1}
    assert mask_counts("nothing here")[1] == {}


def test_masking_is_idempotent_and_placeholders_never_match() -> None:
    placeholders = " ".join(f"[{k.value}]" for k in PiiKind)
    assert mask(placeholders) == placeholders
    for text, _ in MASKED:
        once = mask(text)
        assert mask(once) == once


def test_kinds_can_be_switched_off_and_masking_disabled() -> None:
    only_email = PiiMasker([PiiKind.EMAIL])
    assert only_email.mask("x@y.com 415-555-2671") == "[EMAIL] 415-555-2671"
    privacy = PrivacySettings(kinds=["PHONE"])
    assert text_masker(privacy)("x@y.com 415-555-2671") == "x@y.com [PHONE]"
    assert text_masker(PrivacySettings(mask_pii=False))("x@y.com") == "x@y.com"


def test_privacy_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENT_PRIVACY__MASK_PII", "false")
    monkeypatch.setenv("SENTIMENT_PRIVACY__PHONE_REGIONS", '["GB"]')
    privacy = Settings().privacy
    assert not privacy.mask_pii and privacy.phone_regions == ["GB"]


def test_phone_regions_decide_numbers_written_without_country_code() -> None:
    # 9876543210 is an Indian mobile number; 987 is no US area code.
    assert PiiMasker(phone_regions=["US"]).mask("call 9876543210") == "call 9876543210"
    assert PiiMasker(phone_regions=["IN"]).mask("call 9876543210") == "call [PHONE]"
    assert PiiMasker(phone_regions=["US"]).mask("call +91 98765 43210") == "call [PHONE]"


def test_precision_and_recall_floors_on_the_labelled_sample(shared_data: Path) -> None:
    path = shared_data / "amazon2014_musical_instruments_5core.jsonl"
    masker = PiiMasker()
    real = [r["text"] for r in itertools.islice(iter_records(path), 0, 6000, 6)]
    clean = [t for t in real if not masker.find(t)]
    # Real reviews hold almost no personal data: the masker may touch at most 1 in 200.
    assert len(real) - len(clean) <= len(real) // 200
    sample = synthetic_sample(clean, 600, seed=1)
    assert len(DECOYS) >= 10 and all(s.spans for s in sample)
    for kind, s in score(sample, masker).items():
        assert s.tp > 50, kind
        assert s.precision is not None and s.precision >= 0.98, (kind, s)
        assert s.recall is not None and s.recall >= 0.95, (kind, s)
