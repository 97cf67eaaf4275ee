"""Mixed signals: a confident answer one of whose own clauses tier 1 reads confidently the other way.

A 6-layer model reads "Great product, but it broke in a week" or "Wow, what a fantastic kettle, it leaked
everywhere" as one confident positive: the praise words dominate. Read clause by clause, the same model sees the
complaint. When the whole text's confident label is positive or negative and a clause is confidently the opposite,
the answer is mixed, and it goes down the chain (rules, then a person) with reason `mixed_sentiment` instead of
being served as `ok`. Only short texts are checked (``GateSettings.clause_max_words``): they are what a person
types to try the service and where one clause weighs most, and the check costs one more tier-1 call per clause.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fallback.decide import OPPOSITE, top
from sentiment.outputs import ModelOutput

MAX_CLAUSES = 6
_CONTRAST = r"(?:but|though|although|however|yet|except|whereas)\b"
# Sentence ends, semicolons, commas and dashes; and before a contrast word, which starts a clause of its own.
_BOUNDARY = re.compile(rf"[.!?;,:\u2014\u2013]+\s*|\s+-+\s+|\s+(?={_CONTRAST})", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+")
# The contrast word itself is a discourse marker, not content: the model reads "though it broke" as hedged.
_LEADING_CONTRAST = re.compile(rf"^{_CONTRAST}[\s,]*", re.IGNORECASE)


def words(text: str) -> int:
    return len(_WORD.findall(text))


def split_clauses(text: str) -> list[str]:
    """The clauses of ``text`` that have a word, in order; at most ``MAX_CLAUSES`` (the rest joins the last)."""
    parts = [_LEADING_CONTRAST.sub("", p.strip()) for p in _BOUNDARY.split(text)]
    parts = [p for p in parts if _WORD.search(p)]
    if len(parts) > MAX_CLAUSES:
        parts = parts[: MAX_CLAUSES - 1] + [" ".join(parts[MAX_CLAUSES - 1 :])]
    return parts


def to_check(text: str, whole: ModelOutput, confidence_gate: float, max_words: int) -> list[str]:
    """The clauses to score when ``whole`` is a confident polar answer on a short text of several clauses."""
    label, conf = top(whole)
    if label not in OPPOSITE or conf < confidence_gate or words(text) > max_words:
        return []
    clauses = split_clauses(text)
    return clauses if len(clauses) > 1 else []


def disagreement(
    whole: ModelOutput, clauses: Sequence[str], outputs: Sequence[object], min_confidence: float
) -> str | None:
    """Why the answer is mixed (the first clause read confidently the other way), or None."""
    label, conf = top(whole)
    for clause, out in zip(clauses, outputs, strict=True):
        if not isinstance(out, ModelOutput):
            continue
        c_label, c_conf = top(out)
        if c_label == OPPOSITE.get(label) and c_conf >= min_confidence:
            return f"model {label} at {conf:.2f}, but reads the clause {clause[:60]!r} {c_label} at {c_conf:.2f}"
    return None
