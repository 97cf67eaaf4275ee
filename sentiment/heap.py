"""Keep the garbage collector's full passes off the request path.

A serving process makes most of its objects once, at start-up: libraries, a model, word lists (about 230,000 in
the API process, 430,000 in a transformer process that imported torch to export an older version). CPython's
full collection walks every one of them, a pass long enough to show in the latency tail, during which nothing else
in the process runs. Under steady load that is a p95 spike every minute or so. Freezing the start-up heap (CPython's
``gc.freeze``: the permanent generation) leaves later passes only the objects made since.
"""

from __future__ import annotations

import gc


def freeze_heap() -> None:
    """Collect once, then freeze what is left. Call when a process has loaded what it keeps, and again after it
    swaps a model: unfreezing first lets that pass free the objects the old one left in cycles."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
