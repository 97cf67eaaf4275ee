"""Operations checks: fault drills, the image check, the pod and split rehearsals, dashboard screenshots.

Run from the checkout with ``python -m tools.NAME``; not installed, imported by nothing in the product.
"""
