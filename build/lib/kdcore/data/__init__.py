"""The data layer: CSV schema, FLAME2 import, synthetic data, splits, cache and Dataset.

Everything but the Dataset is plain numpy, pandas and PIL; the Dataset (torch) loads on first use,
so that reading a CSV or a split needs no model library. The lowest package: it may import the base
modules (``kdcore.errors``, ``io``, ``layout``, ``progress``, ``seeds``) only.
"""

from kdcore.data.cache import decoded_frames, frame_hashes, normalization_stats
from kdcore.data.flame2 import import_flame2, parse_label_ranges
from kdcore.data.labels import FLAME2, LabelSet
from kdcore.data.schema import FrameTable, describe, read_frame_csv
from kdcore.data.splits import SPLIT_MODES, Split, leakage, make_split
from kdcore.data.synth import synth

__all__ = [
    "FLAME2", "LabelSet", "SPLIT_MODES", "FrameDataset", "FrameTable", "Split", "decoded_frames",
    "frame_hashes", "import_flame2", "leakage", "make_split", "normalization_stats", "normalize",
    "parse_label_ranges", "read_frame_csv", "describe", "synth",
]


def __getattr__(name: str):
    if name in ("FrameDataset", "normalize"):
        from kdcore.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'kdcore.data' has no attribute {name!r}")
