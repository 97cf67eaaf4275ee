"""The fallback chain: input checks, the confidence gate, keyword rules (tier 2) and the human queue (tier 3)."""
