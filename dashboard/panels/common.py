"""Bits every panel shares: the friendly empty state and the unobtrusive note on what was read."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.loaders import Loaded


def empty_state(what: str, path: Path, hint: str) -> None:
    st.info(f"**{what}**\n\nLooked in `{path}`. {hint}", icon=":material/inbox:")


def read_note(loaded: Loaded, path: Path, noun: str, replicas: bool = False) -> None:
    """Which file (or which replicas' files, with how many records each), how much of it, and how many unreadable
    (torn or corrupt) lines were skipped."""
    scope = f"the last {len(loaded.frame):,} {noun} of" if loaded.at_limit else f"{len(loaded.frame):,} {noun} from"
    where = f"`{path}`"
    if replicas:
        per = loaded.frame["replica"].value_counts().sort_index() if "replica" in loaded.frame else None
        counts = {} if per is None else {str(name): int(count) for name, count in per.items()}
        each = ", ".join(f"`{name}` {count:,}" for name, count in counts.items())
        where = f"`{path.name}` of {len(counts)} replica(s) under `{path.parent}` ({each or 'none yet'})"
    st.caption(f"Showing {scope} {where} · {loaded.skipped:,} unreadable line(s) skipped · refreshed every 10 s")


def read_problem(loaded: Loaded, path: Path) -> None:
    if loaded.error:
        st.warning(f"Could not read `{path}`: {loaded.error}", icon=":material/error:")
