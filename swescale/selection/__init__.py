"""Selection: normalized candidates, voting and ranking selectors, the selection agent,
trajectory replay and branch points, and measures of selection quality.

Heavy parts (the selection agent, replay, the offline comparison) are imported from their
modules; this package exposes the small pure core.
"""

from swescale.selection.candidates import (
    ForeignImport,
    candidate_id,
    candidates_from,
    read_foreign_predictions,
    votes,
)
from swescale.selection.normalize import changed_paths, parse_patch, patch_key
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
    "Selector", "TestVoteSelector", "candidate_id", "candidates_from", "changed_paths",
    "make_selector", "parse_patch", "patch_key", "read_foreign_predictions", "votes",
]  # fmt: skip
