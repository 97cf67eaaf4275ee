"""How a text is cut into the clauses the clause check scores."""

from fallback.clauses import split_clauses


def test_a_contrast_word_starts_a_clause_and_is_not_scored_with_it() -> None:
    # "though" hedges whatever follows it for a 6-layer model; the complaint is the clause's content
    assert split_clauses("The watch is excellent though it overheats all the time.") == [
        "The watch is excellent",
        "it overheats all the time",
    ]
    assert split_clauses("Great sound, but, honestly, the strap snapped") == [
        "Great sound",
        "honestly",
        "the strap snapped",
    ]
    assert split_clauses("However it broke. Yet I kept it") == ["it broke", "I kept it"]


def test_a_contrast_word_inside_a_word_or_alone_is_left_alone() -> None:
    assert split_clauses("The butter dish is great, butterflies on it") == [
        "The butter dish is great",
        "butterflies on it",
    ]
    assert split_clauses("but") == []
