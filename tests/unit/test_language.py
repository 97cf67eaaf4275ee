"""Language gate on real reviews: short English must pass, non-English must be rejected, deterministically."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from sentiment.language_id import detect_language
from sentiment.settings import GateSettings
from sentiment.validation import Validated, validate

GATES = GateSettings()


def _texts(path: Path, n: int, max_chars: int | None = None) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            v = validate(json.loads(line)["text"], GATES)
            if isinstance(v, Validated) and (max_chars is None or len(v.text) <= max_chars):
                out.append(v.text)
            if len(out) >= n:
                break
    return out


@pytest.mark.parametrize("text", ["Great value", "Works as described", "Love it", "nice product", "good", "super!"])
def test_short_english_is_accepted(text):
    assert detect_language(text, GATES).accepted


@pytest.mark.parametrize(
    "text",
    [
        "Très bon produit, je le recommande",
        "Muy buen producto, llegó rápido",
        "Sehr gutes Produkt, gerne wieder",
        "非常好，物流很快",
        "Отличный товар, рекомендую",
    ],
)
def test_foreign_reviews_are_rejected(text):
    assert not detect_language(text, GATES).accepted


def test_detection_is_deterministic():
    text = "nice"
    assert len({detect_language(text, GATES).model_dump_json() for _ in range(20)}) == 1


def test_real_short_english_reviews_false_rejection_under_one_percent(shared_data: Path):
    texts = _texts(shared_data / "flipkart_product_reviews.jsonl.gz", 600, max_chars=40)
    rejected = [t for t in texts if not detect_language(t, GATES).accepted]
    assert len(rejected) / len(texts) < 0.01, rejected[:10]


def test_real_chinese_reviews_are_rejected(shared_data: Path):
    texts = _texts(shared_data / "zh_waimai_10k.jsonl", 300)
    accepted = sum(detect_language(t, GATES).accepted for t in texts)
    assert accepted / len(texts) < 0.05


FOREIGN_SENTENCES = [
    "Le produit est arrivé en retard et la qualité n'est pas du tout celle annoncée sur la page.",
    "El producto llegó tarde y la calidad no es la que se anuncia en la página, no lo recomiendo.",
    "Das Produkt kam zu spät an und die Qualität ist nicht so, wie sie auf der Seite beschrieben wird.",
    "Il prodotto è arrivato in ritardo e la qualità non è quella descritta nella pagina del negozio.",
    "O produto chegou atrasado e a qualidade não é a que foi anunciada na página, não recomendo.",
    "Het product kwam te laat aan en de kwaliteit is niet zoals op de pagina werd beschreven.",
]


def test_clear_english_is_settled_by_fasttext_and_the_rest_by_langdetect():
    g = GateSettings()
    clear = "The strings arrived quickly, sound warm and have stayed in tune for two weeks of daily practice."
    assert detect_language(clear, g).method == "fasttext"
    off = g.model_copy(update={"lang_fast_accept": None})
    assert detect_language(clear, off).method == "langdetect" and detect_language(clear, off).accepted
    for text in FOREIGN_SENTENCES:  # fastText never accepts these, so langdetect gives the verdict
        verdict = detect_language(text, g)
        assert not verdict.accepted and verdict.method == "langdetect", (text, verdict)


def test_fast_path_accepts_nothing_the_careful_path_rejects_on_real_reviews(shared_data: Path):
    g = GateSettings()
    careful = g.model_copy(update={"lang_fast_accept": None})
    french = _texts(shared_data / "amazon_reviews_pds_sample_fr.jsonl", 40)
    texts = french + _texts(shared_data / "amazon2018_fashion_5core.jsonl", 200)
    fast = [detect_language(t, g) for t in texts]
    slow = [detect_language(t, careful) for t in texts]
    assert sum(f.method == "fasttext" for f in fast) > len(texts) / 2  # the fast path does most of the work
    assert [t for t, f, s in zip(texts, fast, slow, strict=True) if f.accepted and not s.accepted] == []


@pytest.mark.parametrize(
    "text",
    ["asdf qwer zxcv", "asdfghjkl", "xqzvbn ptrkl", "aaaaaaaaaa", "jkjkjkjk hjhjhj", "wertyu lkjhg", "!!!!!!", "....."],
)
def test_nonsense_is_not_language(text):
    v = detect_language(text, GATES)
    assert (v.accepted, v.method) == (False, "nonsense")


@pytest.mark.parametrize(
    "text",
    ["excelent product", "beatiful", "Sooooo good!!!", "Loooove it", "Osm product", "suberb quality", "gooood product"],
)
def test_misspelt_and_elongated_english_is_language(text):
    assert detect_language(text, GATES).accepted


def test_foreign_text_stays_not_english_rather_than_nonsense():
    v = detect_language("Das Produkt ist schlecht und kam kaputt an.", GATES)
    assert (v.accepted, v.method, v.lang) == (False, "langdetect", "de")


@pytest.mark.parametrize("text", ["👎👎👎", "😍🔥", "Ezzy Peazzy 😊"])
def test_emoji_without_words_is_accepted_as_emoji(text):
    v = detect_language(text, GATES)
    assert (v.accepted, v.method) == (True, "emoji")


def test_the_nonsense_check_can_be_switched_to_known_words_only():
    strict = GATES.model_copy(update={"min_wordlike_logp": None})
    assert detect_language("beatiful", GATES).accepted
    assert not detect_language("beatiful", strict).accepted
