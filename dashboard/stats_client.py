"""The running service's ``GET /stats``: asked with a short timeout, and an absent service is a note, not an error."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict


class ServiceStats(BaseModel):
    """The fields the dashboard shows; the service may send more."""

    model_config = ConfigDict(extra="allow")

    total_requests: int = 0
    window: int | None = None
    window_size: int | None = None
    status_breakdown: dict[str, int] = {}
    rolling_oov_rate: float | None = None
    rolling_confidence: float | None = None
    # {"0.0-0.2": n, ...} from the service; a bare list of counts over equal buckets is accepted too.
    confidence_histogram: dict[str, int] | list[int] = {}

    def histogram(self) -> dict[str, int]:
        h = self.confidence_histogram
        if isinstance(h, dict):
            return h
        return {f"{i / len(h):.1f}-{(i + 1) / len(h):.1f}": n for i, n in enumerate(h)}


class StatsResult(BaseModel):
    url: str
    stats: ServiceStats | None = None
    problem: str | None = None


def fetch_stats(base_url: str, timeout_s: float = 1.0) -> StatsResult:
    """Never raises: connection refused, timeouts, non-200 and odd JSON all come back as ``problem``."""
    url = base_url.rstrip("/") + "/stats"
    try:
        resp = httpx.get(url, timeout=timeout_s)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return StatsResult(url=url, problem=f"not reachable ({type(exc).__name__})")
    if resp.status_code != 200:
        return StatsResult(url=url, problem=f"answered HTTP {resp.status_code}")
    try:
        return StatsResult(url=url, stats=ServiceStats.model_validate(resp.json()))
    except ValueError as exc:  # includes pydantic.ValidationError
        return StatsResult(url=url, problem=f"sent an unexpected /stats body ({type(exc).__name__})")
