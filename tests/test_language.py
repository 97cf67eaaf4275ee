"""Language gate on real reviews: short English must pass, non-English must be rejected, deterministically."""

from __future__ import annotations

import gzip
import json

import pytest

from sentiment.language import detect_language
from sentiment.settings import get_settings
from sentiment.validation import Validated, validate

DATA = get_settings().paths.shared_data_dir


def _texts(name: str, n: int, max_chars: int | None = None) -> list[str]:
    path = DATA / name
    opener = gzip.open if name.endswith(".gz") else open
    out = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            v = validate(json.loads(line)["text"], get_settings().gates)
            if isinstance(v, Validated) and (max_chars is None or len(v.text) <= max_chars):
                out.append(v.text)
            if len(out) >= n:
                break
    return out


@pytest.mark.parametrize("text", ["Great value", "Works as described", "Love it", "nice product", "good", "super!"])
def test_short_english_is_accepted(text):
    assert detect_language(text).accepted


@pytest.mark.parametrize(
    "text",
    ["Très bon produit, je le recommande", "Muy buen producto, llegó rápido", "Sehr gutes Produkt, gerne wieder",
     "非常好，物流很快", "Отличный товар, рекомендую"],
)
def test_foreign_reviews_are_rejected(text):
    assert not detect_language(text).accepted


def test_detection_is_deterministic():
    text = "nice"
    assert len({detect_language(text).model_dump_json() for _ in range(20)}) == 1


@pytest.mark.skipif(not DATA.exists(), reason="shared data not beside the checkout")
def test_real_short_english_reviews_false_rejection_under_one_percent():
    texts = _texts("flipkart_product_reviews.jsonl.gz", 600, max_chars=40)
    rejected = [t for t in texts if not detect_language(t).accepted]
    assert len(rejected) / len(texts) < 0.01, rejected[:10]


@pytest.mark.skipif(not DATA.exists(), reason="shared data not beside the checkout")
def test_real_chinese_reviews_are_rejected():
    texts = _texts("zh_waimai_10k.jsonl", 300)
    accepted = sum(detect_language(t).accepted for t in texts)
    assert accepted / len(texts) < 0.05


