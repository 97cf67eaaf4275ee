"""The fallback chain: gates between tiers, keyword rules (tier 2) and the human review queue (tier 3)."""
