"""Customer segmentation: named, explained, reproducible segments.

The core is two calls: `analyze` segments customers and `recommend` (in
`segmentation.recommend`) turns an analysis into advice. Nothing here imports a web framework;
the HTTP service lives in `segmentation.api`.
"""

from segmentation.analysis import analyze
from segmentation.errors import InsufficientDataError, InvalidInputError, Problem, SegmentationError
from segmentation.results import Analysis, Segment

__all__ = [
    "Analysis",
    "InsufficientDataError",
    "InvalidInputError",
    "Problem",
    "Segment",
    "SegmentationError",
    "analyze",
]
__version__ = "0.1.0"
