"""Selection: candidates, voting and ranking selectors, the selection agent, trajectory
replay and branch points, and measures of selection quality (patch parsing, keys and
votes live in :mod:`swescale.patches`).

Heavy parts (the selection agent, replay, the offline comparison) are imported from their
modules; this package exposes the small pure core.
"""

from swescale.selection.candidates import ForeignImport, candidates_from, read_foreign_predictions
from swescale.selection.selectors import (
    CalibratedSelector,
    HybridSelector,
    MajorityVoteSelector,
    Selector,
    TestVoteSelector,
    make_selector,
)

__all__ = [
    "CalibratedSelector", "ForeignImport", "HybridSelector", "MajorityVoteSelector",
    "Selector", "TestVoteSelector", "candidates_from", "make_selector",
    "read_foreign_predictions",
]  # fmt: skip
