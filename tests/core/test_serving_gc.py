"""`crm-graph serve` and `worker` tune the garbage collector once the app is built
(crm_graph/serving.py): what exists then is frozen, and the young generation is collected less often."""

from __future__ import annotations

import gc

import pytest

from crm_graph.serving import GC_YOUNG_THRESHOLD, tune_garbage_collector

pytestmark = pytest.mark.one_pass


def test_the_long_lived_objects_are_frozen_and_young_collections_are_rarer() -> None:
    before = gc.get_threshold()
    try:
        gc.unfreeze()
        assert gc.get_freeze_count() == 0
        tune_garbage_collector()
        assert gc.get_freeze_count() > 10_000  # the modules and everything they hold
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
