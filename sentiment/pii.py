"""Masking personal data in review text before it is written to a log or shown to a labeller.

One pass of one regular expression finds candidates; checks the regex cannot express decide the rest: a card
number must pass the Luhn check and start like a card, and a phone number must be a *valid* number of its region
by Google's numbering-plan data (``phonenumbers``), so years, prices, ranges and product codes stay as they are.
Placeholders (``[EMAIL]`` ...) contain no digit, ``@`` or dot, so masking twice equals masking once.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterable
from enum import StrEnum

import phonenumbers
from pydantic import BaseModel

from sentiment.settings import PrivacySettings


class PiiKind(StrEnum):
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    CARD = "CARD"
    URL = "URL"
    IP = "IP"
    ORDER = "ORDER"


class PiiSpan(BaseModel):
    """One finding: ``text[start:end]`` is personal data of ``kind``."""

    kind: PiiKind
    start: int
    end: int


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_TLD = r"(?:com|net|org|edu|gov|info|biz|io|co|in|uk|us|ca|de|au|ly|me)"
# (group, regex, trigger) in priority order: at one position the first alternative that matches wins, and the
# leftmost match always wins, so "x@www.shop.com" is one e-mail address and "https://a.com/?u=x@y.com" one URL.
# A text only pays for the alternatives whose cheap trigger it contains (most reviews: none, or digits only).
_ALTERNATIVES: tuple[tuple[str, str, str], ...] = (
    (
        "URL",
        rf"""(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>"'\]\[]+
                |\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.{_TLD}/[^\s<>"'\]\[]*""",
        "link",
    ),
    ("EMAIL", r"(?<![\w.%+-])[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b", "at"),
    ("ORDER", r"(?<![\w-])(?:\d{3}-\d{7}-\d{7}|OD\d{15,21})(?![\w-])", "digit"),
    # A version such as "1.0.5.0" is not an address: at least one octet has two digits.
    ("IP", rf"(?<![\w.])(?=[\d.]*\d\d)(?:{_OCTET}\.){{3}}{_OCTET}(?!\.?\d)", "digit"),
    # Digit groups with separators: order numbers, cards and phones, told apart (and from prices, years and codes)
    # by PiiMasker.find.
    # A spaced dash is a range ("67000 - 67007"), not a separator.
    ("NUMBER", r"(?<![\w@/.+-])\+?\(?\d+\)?(?:[ .-]?\(?\d+\)?)*", "digit"),
)
_TRIGGERS = {"link": re.compile(r"/|www\.", re.IGNORECASE), "at": re.compile("@"), "digit": re.compile(r"\d")}
# Compiled up front for every combination of triggers, so no request pays for a compilation.
_PATTERNS = {
    frozenset(present): re.compile(
        "|".join(f"(?P<{name}>{regex})" for name, regex, trigger in _ALTERNATIVES if trigger in present),
        re.IGNORECASE | re.VERBOSE,
    )
    for n in range(1, len(_TRIGGERS) + 1)
    for present in itertools.combinations(_TRIGGERS, n)
}


def _pattern(text: str) -> re.Pattern[str] | None:
    """The alternatives ``text`` can match."""
    present = frozenset(name for name, trigger in _TRIGGERS.items() if trigger.search(text))
    return _PATTERNS[present] if present else None


_TOKEN = re.compile(r"\+?\(?\d+\)?")
# A number right after "order no -", "invoice #", "tracking id:" ... is that document's id, whatever its digits
# would otherwise pass for ("Order no - 1127326452" is also a valid Indian phone number).
_ORDER_CONTEXT = re.compile(
    r"\b(?:order|invoice|tracking|awb|booking|transaction|txn)(?:\s*(?:no|num|number|id))?\.?\s*[#:-]?\s*$",
    re.IGNORECASE,
)
_ORDER_MIN_DIGITS = 6
_MOBILE = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})
_TRAILING = ".,;:!?)"
_CODE_TAIL = re.compile(r"[-_/]?[^\W\d_]")
_CARD_SEPARATORS = frozenset(" -")


def luhn_ok(digits: str) -> bool:
    """The checksum every payment card number carries; about 1 in 10 random digit runs passes it."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(candidate: str) -> bool:
    digits = "".join(ch for ch in candidate if ch.isdigit())
    # Issuer ranges start with 2-6 (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/RuPay/UnionPay 6), which
    # also keeps ISBN-13 (978/979) out.
    return (
        13 <= len(digits) <= 19
        and digits[0] in "23456"
        and all(ch.isdigit() or ch in _CARD_SEPARATORS for ch in candidate)
        and luhn_ok(digits)
    )


class PiiMasker:
    """Finds and masks the enabled kinds; phone numbers without ``+`` are read as numbers of ``phone_regions``."""

    def __init__(self, kinds: Iterable[PiiKind] = tuple(PiiKind), phone_regions: Iterable[str] = ("US", "IN")) -> None:
        self.kinds = frozenset(kinds)
        self.phone_regions = tuple(phone_regions)

    def _valid_phone(self, candidate: str) -> bool:
        """A valid number of its region. Outside the NANP (+1), whose area codes and exchanges reject most digit
        runs, a number written without "+" or a trunk "0" must be a mobile: "1234567890" is a valid Indian
        landline, but people write a landline with its "0".
        """
        digits = "".join(ch for ch in candidate if ch.isdigit())
        if not 8 <= len(digits) <= 15:
            return False
        international = candidate.startswith("+")
        for region in (None,) if international else self.phone_regions:
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if not phonenumbers.is_valid_number(number):
                continue
            if international or digits[0] == "0" or number.country_code == 1:
                return True
            if phonenumbers.number_type(number) in _MOBILE:
                return True
        return False

    def _phones(self, candidate: str, offset: int) -> list[PiiSpan]:
        """Longest valid phone numbers among runs of whole digit groups, left to right ("call 415 555 2671 2x").

        A run may leave out only short groups (at most 2 digits) next to it, so the tail of a longer number (a card
        that failed the Luhn check, a serial) is never taken for a phone number.
        """
        tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(candidate)]

        def short(k: int) -> bool:
            return not 0 <= k < len(tokens) or sum(ch.isdigit() for ch in candidate[slice(*tokens[k])]) <= 2

        spans: list[PiiSpan] = []
        i = free = 0  # tokens before ``free`` already belong to a phone number
        while i < len(tokens):
            for j in range(len(tokens), i, -1):
                start, end = tokens[i][0], tokens[j - 1][1]
                piece = candidate[start:end]
                if piece.count("(") != piece.count(")") or not ((i == free or short(i - 1)) and short(j)):
                    continue
                if self._valid_phone(piece):
                    spans.append(PiiSpan(kind=PiiKind.PHONE, start=offset + start, end=offset + end))
                    i = free = j
                    break
            else:
                i += 1
        return spans

    def find(self, text: str) -> list[PiiSpan]:
        """Every finding, in text order, never overlapping."""
        spans: list[PiiSpan] = []
        pattern = _pattern(text)
        if pattern is None:
            return spans
        for m in pattern.finditer(text):
            kind = m.lastgroup or ""
            start, end = m.span()
            if kind == "URL":
                while end > start and text[end - 1] in _TRAILING:
                    end -= 1
            if kind == "NUMBER":
                spans.extend(self._number(text, start, end))
            elif PiiKind(kind) in self.kinds:
                spans.append(PiiSpan(kind=PiiKind(kind), start=start, end=end))
        return spans

    def _number(self, text: str, start: int, end: int) -> list[PiiSpan]:
        """A run of digits: an order number by its context, else a card by its checksum, else phone numbers."""
        if _CODE_TAIL.match(text, end):  # part of a code such as "2671abc" or "2125550199-B"
            return []
        candidate = text[start:end]
        digits = sum(ch.isdigit() for ch in candidate)
        if digits >= _ORDER_MIN_DIGITS and _ORDER_CONTEXT.search(text, max(0, start - 30), start):
            return [PiiSpan(kind=PiiKind.ORDER, start=start, end=end)] if PiiKind.ORDER in self.kinds else []
        if PiiKind.CARD in self.kinds and _is_card(candidate):
            return [PiiSpan(kind=PiiKind.CARD, start=start, end=end)]
        if PiiKind.PHONE in self.kinds and digits >= 8:
            return self._phones(candidate, start)
        return []

    def mask_counts(self, text: str) -> tuple[str, Counter[PiiKind]]:
        """The masked text and how many findings of each kind it replaced."""
        spans = self.find(text)
        if not spans:
            return text, Counter()
        parts: list[str] = []
        pos = 0
        for s in spans:
            parts.append(text[pos : s.start])
            parts.append(f"[{s.kind.value}]")
            pos = s.end
        parts.append(text[pos:])
        return "".join(parts), Counter(s.kind for s in spans)

    def mask(self, text: str) -> str:
        return self.mask_counts(text)[0]


def _unchanged(text: str) -> str:
    return text


def text_masker(privacy: PrivacySettings) -> Callable[[str], str]:
    """What a writer applies to review text: the configured masker, or the text unchanged when masking is off."""
    if not privacy.mask_pii:
        return _unchanged
    return PiiMasker(map(PiiKind, privacy.kinds), privacy.phone_regions).mask


_DEFAULT = PiiMasker()


def mask(text: str) -> str:
    """``text`` with every kind of personal data replaced by its placeholder (US and Indian phone formats)."""
    return _DEFAULT.mask(text)


def mask_counts(text: str) -> tuple[str, Counter[PiiKind]]:
    """Like :func:`mask`, plus the number of findings per kind, for measuring."""
    return _DEFAULT.mask_counts(text)
