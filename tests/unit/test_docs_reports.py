"""``reports/`` holds only what the docs cite, and the docs cite only reports that exist.

A result file nobody cites is a run a reader cannot place (superseded runs live in git history), and a page that
cites a removed report sends the reader nowhere. Pages: everything under ``docs/`` plus the two READMEs.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "reports"
IGNORED_SUFFIXES = (".tmp",)

# `reports/x` (from the repository root) or `../reports/x` (a link from docs/), but not `var/reports/x` or
# `<reports_dir>/x`: what precedes the match may not continue a path.
CITATION = re.compile(r"(?<![\w/.<>-])((?:\.\./)*)(reports(?:/[\w.-]+)*/?)")


def pages() -> list[Path]:
    return [*sorted((REPO / "docs").rglob("*.md")), REPO / "README.md", REPO / "deploy" / "README.md"]


def cited_paths(text: str, page: Path) -> set[Path]:
    """Absolute paths the text cites under ``reports/``, relative links resolved from the page's folder."""
    cited = set()
    for match in CITATION.finditer(text):
        ups, rel = match.groups()
        rel = rel.rstrip("./") or "reports"  # a sentence's full stop, a folder's slash
        base = page.parent / ups if ups else REPO
        cited.add((base / rel).resolve())
    return cited


def report_files() -> set[Path]:
    return {p.resolve() for p in REPORTS.rglob("*") if p.is_file() and not p.name.endswith(IGNORED_SUFFIXES)}


def citations() -> dict[Path, set[Path]]:
    return {page: cited_paths(page.read_text(encoding="utf-8"), page) for page in pages() if page.is_file()}


def test_citations_are_read_from_both_kinds_of_link() -> None:
    page = REPO / "docs" / "page.md"
    text = (
        "[a](../reports/a.json), `reports/b/c.png`. Ends a sentence: reports/d.md. A folder: reports/e/\n"
        "Not citations: var/reports/x.json, <reports_dir>/model/y.json, my_reports/z.json"
    )
    assert cited_paths(text, page) == {
        REPO / "reports" / "a.json",
        REPO / "reports" / "b" / "c.png",
        REPO / "reports" / "d.md",
        REPO / "reports" / "e",
    }


def test_every_report_is_cited_by_a_page() -> None:
    cited = set().union(*citations().values())
    uncited = sorted(str(p.relative_to(REPO)) for p in report_files() - cited)
    assert not uncited, f"reports no page in docs/ (or README.md, deploy/README.md) cites: {uncited}"


def test_every_cited_report_exists() -> None:
    missing = sorted(
        f"{page.relative_to(REPO)} -> {path.relative_to(REPO)}"
        for page, paths in citations().items()
        for path in paths
        if not path.exists()
    )
    assert not missing, f"pages cite reports that do not exist: {missing}"
