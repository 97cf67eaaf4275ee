"""One module per dashboard panel; each exposes ``render(sources, settings, labeller)``."""
