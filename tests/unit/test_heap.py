"""Freezing the start-up heap frees its garbage first and then keeps what is left out of later collections."""

from __future__ import annotations

import gc
import weakref

from sentiment.heap import freeze_heap


class Node:
    other: Node | None = None


def test_garbage_is_collected_before_the_freeze_and_live_objects_are_frozen() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector can free it
    dead = weakref.ref(a)
    del a, b
    kept = [Node() for _ in range(1000)]
    gc.unfreeze()
    try:
        freeze_heap()
        assert dead() is None
        assert gc.get_freeze_count() >= len(kept)
        before = gc.get_freeze_count()
        freeze_heap()  # again (after a model swap): unfrozen, collected, frozen; nothing lost or doubled
        assert abs(gc.get_freeze_count() - before) < 1000
    finally:
        gc.unfreeze()
