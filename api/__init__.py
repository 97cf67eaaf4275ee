"""The API service's request handling: what ``service.py`` wires together behind ``/predict``.

A request passes the HTTP middleware (``http``, ``security``), then ``request.Pipeline`` runs the tier sequence
over the runner services (``runner_tiers``, with ``coalesce`` joining concurrent calls), logs and counts it
(``monitoring``) and may shadow-score it (``shadow``). ``schemas`` and ``openapi`` describe the HTTP surface.
"""
