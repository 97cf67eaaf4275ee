"""A labelled sample for the PII masker and its scores, so precision and recall are measured, not assumed.

Real reviews carry almost no personal data, so recall is measured on synthetic findings inserted into real reviews
at known spans (a seeded generator: the same seed gives the same sample). Precision has two sides: exact spans on
that sample, and how many untouched real reviews the masker changes at all (each such hit is a suspect).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterable, Sequence

import phonenumbers
from pydantic import BaseModel

from sentiment.pii import PiiKind, PiiMasker, PiiSpan, luhn_ok


class LabelledText(BaseModel):
    """A review with the spans that are personal data; ``spans`` is empty for an untouched real review."""

    text: str
    spans: list[PiiSpan]


class KindScore(BaseModel):
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


_FIRST = ["john", "priya", "maria", "wei", "ahmed", "sara", "rahul", "emily", "carlos", "anita"]
_LAST = ["smith", "sharma", "garcia", "chen", "khan", "jones", "patel", "miller", "reddy", "brown"]
_MAIL_DOMAINS = ["gmail.com", "yahoo.co.in", "outlook.com", "hotmail.com", "rediffmail.com", "company.org"]
_WEB_DOMAINS = ["myshop.com", "bit.ly", "reviews-blog.net", "guitarforum.org", "deals.co.in", "example.io"]


def _email(rng: random.Random) -> str:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    local = rng.choice([f"{first}.{last}", f"{first}{rng.randint(1, 99)}", f"{first[0]}{last}", f"{first}_{last}"])
    return f"{local}@{rng.choice(_MAIL_DOMAINS)}"


def _valid_number(rng: random.Random, region: str, first: str, length: int) -> phonenumbers.PhoneNumber:
    """A number the numbering plan allows (what people post); outside the NANP only mobiles."""
    while True:
        digits = first + "".join(rng.choice(string.digits) for _ in range(length - len(first)))
        number = phonenumbers.parse(digits, region)
        if phonenumbers.is_valid_number(number) and (
            number.country_code == 1 or phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
        ):
            return number


def _phone(rng: random.Random) -> str:
    fmt = phonenumbers.PhoneNumberFormat
    pick = rng.random()
    if pick < 0.4:  # US, in the ways people type them
        n = str(_valid_number(rng, "US", rng.choice("23456789"), 10).national_number)
        a, b, c = n[:3], n[3:6], n[6:]
        return rng.choice(
            [
                f"({a}) {b}-{c}",
                f"{a}-{b}-{c}",
                f"{a}.{b}.{c}",
                f"+1 {a} {b} {c}",
                f"1-{a}-{b}-{c}",
                f"+1-{a}-{b}-{c}",
                f"{a} {b} {c}",
            ]
        )
    if pick < 0.8:  # India: mobiles mostly
        n = str(_valid_number(rng, "IN", rng.choice("6789"), 10).national_number)
        return rng.choice([f"+91 {n[:5]} {n[5:]}", f"+91-{n}", f"0{n}", n, f"{n[:5]} {n[5:]}", f"+91{n}"])
    region, first, length = rng.choice([("GB", "7", 10), ("DE", "15", 11), ("AU", "4", 9), ("SG", "8", 8)])
    return phonenumbers.format_number(_valid_number(rng, region, first, length), fmt.INTERNATIONAL)


def _card(rng: random.Random) -> str:
    prefix, length = rng.choice(
        [
            ("4", 16),
            ("51", 16),
            ("55", 16),
            ("2221", 16),
            ("34", 15),
            ("37", 15),
            ("6011", 16),
            ("60", 16),
            ("4", 13),
            ("62", 19),
        ]
    )
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    digits = next(body + d for d in string.digits if luhn_ok(body + d))
    sep = rng.choice([" ", "-", ""])
    if length == 15:
        return sep.join([digits[:4], digits[4:10], digits[10:]])
    return sep.join(digits[i : i + 4] for i in range(0, length, 4))


def _url(rng: random.Random) -> str:
    domain = rng.choice(_WEB_DOMAINS)
    slug = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(rng.randint(4, 10)))
    return rng.choice(
        [
            f"https://www.{domain}/p/{slug}",
            f"http://{domain}/{slug}?ref=mail",
            f"www.{domain}/{slug}",
            f"https://{domain}/{slug}",
            f"{domain}/review/{slug}",
        ]
    )


def _ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1 if i == 0 else 0, 254)) for i in range(4))


def _order(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return f"{rng.randint(100, 999)}-{rng.randint(0, 9_999_999):07d}-{rng.randint(0, 9_999_999):07d}"
    return "OD" + "".join(rng.choice(string.digits) for _ in range(18))


GENERATORS: dict[PiiKind, Callable[[random.Random], str]] = {
    PiiKind.EMAIL: _email,
    PiiKind.PHONE: _phone,
    PiiKind.CARD: _card,
    PiiKind.URL: _url,
    PiiKind.IP: _ip,
    PiiKind.ORDER: _order,
}
_TEMPLATES: dict[PiiKind, list[str]] = {
    PiiKind.EMAIL: [
        "Email me at {} if you want details.",
        "Contact: {} (any time).",
        "my id is {} for any query",
        "Write to {}.",
    ],
    PiiKind.PHONE: [
        "Call me on {} anytime.",
        "Their support number {} never answers.",
        "ph: {}, evenings.",
        "Call {}.",
    ],
    PiiKind.CARD: ["They charged my card {} twice!", "card no {} was billed.", "Paid with {}."],
    PiiKind.URL: ["More photos at {} if interested.", "See {}.", "(link: {})", "I bought it from {} last week."],
    PiiKind.IP: ["My router at {} lost it.", "logged in from {} and failed.", "IP {}."],
    PiiKind.ORDER: ["My order #{} never arrived.", "Order ID: {}.", "refund for order {} still pending."],
}


def _luhn_invalid_card(rng: random.Random) -> str:
    while True:
        digits = "4" + "".join(rng.choice(string.digits) for _ in range(15))
        if not luhn_ok(digits):
            return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


# Look-alikes that ordinary reviews contain and that must stay as they are (the precision side).
DECOYS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"${r.randint(1, 999)}.{r.randint(0, 99):02d}",
    lambda r: f"Rs. {r.randint(1, 99)},{r.randint(0, 999):03d}",
    lambda r: f"{r.randint(1, 12)}/{r.randint(1, 28)}/{r.randint(1998, 2014)}",
    lambda r: f"{r.randint(1998, 2014)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
    lambda r: r.choice(["SM57", "KX-TG6512", "B000068O3J", "XLR-to-USB", "EF 50mm f/1.8", "RTX 3080"]),
    lambda r: r.choice(["5/5", "4.5 out of 5", "10/10", "5 stars", "3.5/5"]),
    lambda r: f"{r.randint(1990, 2005)} {r.randint(2006, 2014)} and {r.randint(2015, 2019)}",
    lambda r: f"{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}",
    _luhn_invalid_card,
    lambda r: r.choice(["123-456-7890", "000-000-0000", "555-1234", "1234567890"]),
    lambda r: r.choice(["978-0-13-468599-1", "9780131103627", "0-13-110362-8"]),
    lambda r: f"{r.randint(1, 12)}:{r.randint(0, 59):02d} pm",
    lambda r: f"{r.randint(2, 30)} x {r.randint(2, 30)} x {r.randint(1, 9)} inches",
    lambda r: f"{r.randint(10000, 99999)}",
    lambda r: f"{r.randint(100, 999)} {r.randint(100, 999)} {r.randint(10, 99)} pieces",
)
_DECOY_TEMPLATES = ["It was {} when I checked.", "Note: {}.", "I paid {} for it", "{} is what it says."]


def insert_pii(base: str, kinds: Sequence[PiiKind], rng: random.Random, decoys: int = 0) -> LabelledText:
    """``base`` with one templated finding per kind, and ``decoys`` look-alikes, between its sentences."""
    sentences = [s for s in base.replace("! ", "!\n").replace(". ", ".\n").replace("? ", "?\n").split("\n") if s]
    items: list[PiiKind | None] = [*kinds, *[None] * decoys]
    inserts = [(rng.randint(0, len(sentences)), item) for item in items]
    text, spans = "", []
    for i in range(len(sentences) + 1):
        for _, kind in (x for x in inserts if x[0] == i):
            template = rng.choice(_TEMPLATES[kind] if kind else _DECOY_TEMPLATES)
            value = GENERATORS[kind](rng) if kind else rng.choice(DECOYS)(rng)
            text += " " if text else ""
            start = len(text) + template.index("{}")
            text += template.format(value)
            if kind:
                spans.append(PiiSpan(kind=kind, start=start, end=start + len(value)))
        if i < len(sentences):
            text += (" " if text else "") + sentences[i]
    return LabelledText(text=text, spans=spans)


def synthetic_sample(bases: Sequence[str], n: int, seed: int = 0, max_per_text: int = 2) -> list[LabelledText]:
    """``n`` texts, each with 1-``max_per_text`` findings (kinds in turn) and 1-2 decoys; all drawn from ``seed``."""
    rng = random.Random(seed)
    kinds = list(PiiKind)
    out: list[LabelledText] = []
    for i in range(n):
        chosen = [kinds[i % len(kinds)]] + rng.sample(kinds, rng.randint(0, max_per_text - 1))
        out.append(insert_pii(rng.choice(bases), chosen, rng, decoys=rng.randint(1, 2)))
    return out


def score(samples: Iterable[LabelledText], masker: PiiMasker) -> dict[PiiKind, KindScore]:
    """Exact-span scores per kind: a finding counts only with the right kind, start and end."""
    scores = {k: KindScore() for k in PiiKind}
    for sample in samples:
        gold = {(s.kind, s.start, s.end) for s in sample.spans}
        found = {(s.kind, s.start, s.end) for s in masker.find(sample.text)}
        for kind, _, _ in found & gold:
            scores[kind].tp += 1
        for kind, _, _ in found - gold:
            scores[kind].fp += 1
        for kind, _, _ in gold - found:
            scores[kind].fn += 1
    return scores
