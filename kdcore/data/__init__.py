"""The data layer: CSV schema, FLAME2 import, synthetic data, splits, cache and Dataset.

Names load their module on first use: reading a CSV or a split needs no torch, only the Dataset does.
"""

from importlib import import_module

_WHERE = {
    "decoded_frames": "cache", "frame_hashes": "cache", "normalization_stats": "cache",
    "FrameDataset": "dataset", "normalize": "dataset",
    "import_flame2": "flame2", "parse_label_ranges": "flame2",
    "COMBOS": "schema", "LABELS": "schema", "FrameTable": "schema", "describe": "schema", "read_frame_csv": "schema",
    "SPLIT_MODES": "splits", "Split": "splits", "leakage": "splits", "make_split": "splits",
    "synth": "synth",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'kdcore.data' has no attribute {name!r}")
    return getattr(import_module(f"kdcore.data.{_WHERE[name]}"), name)
