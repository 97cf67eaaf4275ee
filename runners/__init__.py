"""The three BentoML runner services the API calls through ``bentoml.depends``.

``transformer`` (tier 1, adaptive batching), ``language`` (language identification) and ``rules`` (tier 2 keyword
rules). Each wraps logic that lives below it and runs without a server.
"""
