"""BentoML runner services (tier 1 transformer, language, rules) and what the API service does with them.

``service.py`` only wires these together; each module here has one job and runs without a server.
"""
