"""Panel 4: the model lifecycle: champion and challenger, stored versions, alias history, the last promotion
gate, and live shadow agreement."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.panels import TITLES
from dashboard.panels.common import empty_state
from dashboard.sources import Sources
from sentiment.jsonl import tail_records
from sentiment.model.aliases import AliasRegistry
from sentiment.model.registry import list_versions
from sentiment.settings import Settings
from sentiment.shadow_log import ShadowSummary, summarize
from training.promotion import GateReport, last_report

TITLE = TITLES["models"]


@st.cache_data(ttl=10, show_spinner=False)
def _registry(name: str, stamp: int) -> tuple[pd.DataFrame, pd.DataFrame, str | None, str | None]:
    """Versions and alias history; ``stamp`` (the history's size) keys the cache so a promotion shows at once."""
    registry = AliasRegistry(name)
    state = registry.state()
    versions = pd.DataFrame(
        [
            {
                **v.model_dump(),
                "aliases": ", ".join(
                    a for a, t in (("champion", state.champion), ("challenger", state.challenger)) if t == v.tag
                ),
            }
            for v in list_versions(name)
        ]
    )
    history = pd.DataFrame([c.model_dump() for c in reversed(registry.history())])
    return versions, history, state.champion, state.challenger


def _shadow(path: Path, window: int) -> ShadowSummary | None:
    return summarize(tail_records(path, window)) if path.exists() else None


def _confusion_chart(summary: ShadowSummary) -> alt.Chart:
    cells = pd.DataFrame(
        [{"champion": a, "challenger": b, "answers": n} for a, row in summary.confusion.items() for b, n in row.items()]
    )
    base = alt.Chart(cells).encode(
        x=alt.X("challenger:N", title="challenger said"), y=alt.Y("champion:N", title="champion said")
    )
    return (
        base.mark_rect().encode(color=alt.Color("answers:Q", scale=alt.Scale(scheme="blues"), legend=None))
        + base.mark_text().encode(text="answers:Q")
    ).properties(height=220)


def _gate(report: GateReport) -> None:
    verdict = "passed" if report.passed else "failed"
    st.markdown(
        f"**{report.ts[:19]}Z** · `{report.challenger}` vs `{report.champion}` · gate {verdict} → "
        f"**{report.action}** {report.action_detail}"
    )
    b = report.bootstrap
    cols = st.columns(4)
    cols[0].metric(
        "macro-F1 difference", f"{b.difference:+.3f}", help=f"{b.ci_level:.0%} CI [{b.ci_low:+.3f}, {b.ci_high:+.3f}]"
    )
    cols[1].metric("bootstrap p (one-sided)", f"{b.p_value:.4f}")
    cols[2].metric("McNemar p", f"{report.mcnemar.p_value:.2g}")
    cols[3].metric("reviews", f"{report.evaluation.n_base + report.evaluation.n_human:,}")
    st.dataframe(pd.DataFrame([c.model_dump() for c in report.checks]), hide_index=True, use_container_width=True)
    png = Path(report.report_dir) / "gate.png"
    if png.exists():
        st.image(str(png))


def render(sources: Sources, settings: Settings, labeller: str) -> None:
    st.header(TITLE)
    name = settings.model.name
    versions, history, champion, challenger = _registry(name, AliasRegistry(name).stamp())
    cols = st.columns(3)
    cols[0].metric("champion (serving)", champion or "none")
    cols[1].metric("challenger (shadowed)", challenger or "none")
    shadow = _shadow(settings.paths.shadow_log, settings.service.stats_window)
    agreement = f"{shadow.agreement:.1%}" if shadow and shadow.agreement is not None else "n/a"
    cols[2].metric("shadow agreement", agreement, help="over the last shadowed answers of the newest pairing")
    if versions.empty:
        empty_state("No stored versions", settings.paths.data_dir, "Train one: python scripts/train.py")
        return
    st.subheader("Versions")
    st.dataframe(versions, hide_index=True, use_container_width=True)
    st.subheader("Shadow scoring")
    if shadow is None or not shadow.n:
        empty_state(
            "No shadowed answers yet",
            settings.paths.shadow_log,
            "Set a challenger (sentiment-models challenger VERSION --reason ...): the service scores a share "
            "of its answers with it.",
        )
    else:
        st.caption(f"{shadow.n:,} answers: champion `{shadow.champion_tag}`, challenger `{shadow.challenger_tag}`")
        st.altair_chart(_confusion_chart(shadow), use_container_width=True)
    st.subheader("Last promotion gate")
    report = last_report(settings)
    if report is None:
        empty_state("No gate has run", settings.promotion_reports_dir, "Run: sentiment-models gate --dry-run")
    else:
        _gate(report)
    st.subheader("Alias history")
    st.dataframe(history, hide_index=True, use_container_width=True)
