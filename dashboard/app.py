"""The operator dashboard. Start it with ``sentiment-dashboard`` (or ``streamlit run dashboard/app.py``).

Reads only files (and, when reachable, ``GET /stats``), so it runs beside the service or on a copy of its logs.
``?panel=overview|queue|drift|models&source=real|demo`` in the URL opens a given view (bookmarks, screenshots).
"""

from __future__ import annotations

import streamlit as st

from dashboard import demo
from dashboard.panels import drift, labelling, lifecycle, overview
from dashboard.sources import demo_dir, sources_for
from sentiment.settings import load_settings

PANELS = {
    "overview": (overview.TITLE, overview.render),
    "queue": (labelling.TITLE, labelling.render),
    "drift": (drift.TITLE, drift.render),
    "models": (lifecycle.TITLE, lifecycle.render),
}

st.set_page_config(page_title="Review sentiment · operations", page_icon=":material/monitoring:", layout="wide")
settings = load_settings()  # per run, so env changes (and tests) are picked up without a restart

# Widget defaults come from the URL once, then live in session state (callbacks may change them).
st.session_state.setdefault(
    "panel", st.query_params.get("panel") if st.query_params.get("panel") in PANELS else "overview"
)
st.session_state.setdefault("demo", st.query_params.get("source") == "demo")


def _seed_demo() -> None:
    try:
        result = demo.seed(sources_for(settings, demo=True), gate=settings.gates.confidence_gate)
    except OSError as exc:
        st.session_state["seeded"] = f":red[Could not write demo data: {exc}]"
        return
    st.session_state["demo"] = True
    st.session_state["seeded"] = f"Wrote {result.predictions} demo predictions ({result.queued} queued for review)."


try:
    demo_location = demo_dir(settings)
except ValueError as exc:
    st.error(f"Dashboard misconfigured: {exc}")
    st.stop()

with st.sidebar:
    st.title("Review sentiment")
    panel = st.radio("Panel", list(PANELS), format_func=lambda k: PANELS[k][0], key="panel")
    st.divider()
    st.subheader("Demo data")
    show_demo = st.toggle("Show demo data", key="demo", help="Read the demo files instead of the service's logs.")
    st.button(f"Seed {demo.DEMO_RECORDS} demo records", key="seed_demo", on_click=_seed_demo, icon=":material/science:")
    if seeded := st.session_state.pop("seeded", None):
        st.caption(seeded)
    st.caption(f"Demo files live in `{demo_location}`, apart from the real logs.")
    st.divider()
    labeller = st.text_input("Labeller name", value="operator", key="labeller", help="Stored with each label.")

st.query_params.update(panel=panel, source="demo" if show_demo else "real")
sources = sources_for(settings, demo=show_demo)
if show_demo:
    st.badge("demo data", color="orange", icon=":material/science:")
PANELS[panel][1](sources, settings, labeller)
