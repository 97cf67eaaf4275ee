"""One module per dashboard panel; each exposes ``TITLE`` and ``render(sources, settings, labeller)``.

The titles live here so tools that look for a panel's heading (``tools.dashboard_screenshot``) need not import
Streamlit.
"""

TITLES = {
    "overview": "Predictions overview",
    "queue": "Human review queue",
    "drift": "Drift report",
    "models": "Models",
}
