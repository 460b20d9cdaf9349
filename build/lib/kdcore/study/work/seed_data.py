"""One seed's data: the frames decoded once, split into parts, normalization fitted on train."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kdcore.data import (
    FrameDataset,
    FrameTable,
    Split,
    decoded_frames,
    make_split,
    normalization_stats,
    read_frame_csv,
    synth,
)
from kdcore.data.splits import labelled_mask
from kdcore.errors import KDError
from kdcore.io import read_json, write_json
from kdcore.layout import Layout, synth_recipe
from kdcore.study.config import Config
from kdcore.training.loop import is_main_process, main_process_first


@dataclass
class SeedData:
    """One seed's split of the frames, with normalization fitted on its training part, and which
    training frames' labels may be used (all but under a label budget)."""

    table: FrameTable
    split: Split
    stats: dict
    rgb: np.ndarray
    ir: np.ndarray
    seed: int
    labelled: np.ndarray  # bool per frame

    def indices(self, part: str) -> np.ndarray:
        """``all``, a part, or ``labelled``: the training frames whose labels are used."""
        if part == "all":
            return np.arange(len(self.table))
        if part == "labelled":
            return self.split.train[self.labelled[self.split.train]]
        return self.split.parts()[part]

    def dataset(self, part: str | np.ndarray, with_ir: bool = True, augment: bool = False) -> FrameDataset:
        indices = self.indices(part) if isinstance(part, str) else part
        return FrameDataset(self.rgb, self.ir if with_ir else None, self.table.targets,
                            self.table.frames["id"].tolist(), indices, self.stats, augment)

    @property
    def label_budget(self) -> bool:
        return not self.labelled[self.split.train].all()

    def labelled_ids(self) -> set[str] | None:
        """The ids whose labels the distilled student's hard term may use; None: all of them."""
        return set(self.table.frames["id"].iloc[self.indices("labelled")]) if self.label_budget else None


SYNTH_FORMAT = 2  # 2: the CSV says which frames are one camera pass (its video column)


def ensure_data(cfg: Config) -> Path:
    """The CSV, generated first when the config asks for synthetic data and it is missing."""
    csv = Path(cfg.csv)
    recipe_path = synth_recipe(csv)
    recipe = {"frames": cfg.synth_frames, "size": cfg.synth_size, "options": cfg.synth_options,
              "format": SYNTH_FORMAT}
    if not csv.exists() and cfg.synth_frames > 0:
        synth(csv.parent, frames=cfg.synth_frames, size=cfg.synth_size, seed=0, options=cfg.synth_options)
        write_json(recipe_path, recipe)
    if not csv.exists():
        raise KDError(f"config key 'csv': no such file {csv}")
    if cfg.synth_frames > 0 and recipe_path.exists() and read_json(recipe_path) != recipe:
        found = read_json(recipe_path)
        what = ("by an older kdcore, without the video column" if found.get("format") != SYNTH_FORMAT
                else f"with other settings ({found})")
        raise KDError(f"config key 'synth_options': the data at {csv.parent} was generated {what}; "
                      "remove that folder (it is generated anew) or point csv elsewhere")
    return csv


def prepare_data(cfg: Config, seed: int, progress: bool = True) -> SeedData:
    table = read_frame_csv(ensure_data(cfg), cfg.base_path, check_images=False, labels=cfg.label_set)
    layout = Layout(cfg.output)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else layout.cache()
    with main_process_first():
        rgb = decoded_frames(table, "rgb", cfg.image_size, cache, progress)
        ir = decoded_frames(table, "ir", cfg.image_size, cache, progress)
    split = make_split(table.strata, table.groups, cfg.split, seed, cfg.block_frames, cfg.gap_frames,
                       table.videos, cfg.train_size)
    labelled = labelled_mask(split, table.strata, cfg.labelled_fraction, seed)
    stats = normalization_stats(rgb, ir, split.train)
    if is_main_process():
        write_json(layout.split(seed), split_record(table, split, labelled, seed))
        write_json(layout.normalization(seed), stats)
    return SeedData(table, split, stats, rgb, ir, seed, labelled)


def split_record(table: FrameTable, split: Split, labelled: np.ndarray, seed: int) -> dict:
    """Which frame went where (ids and blocks per part), and the training frames without labels."""
    ids, parts = table.frames["id"], split.parts()
    return {"mode": split.mode, "seed": seed, "left_out": split.left_out,
            **{p: ids.iloc[ix].tolist() for p, ix in parts.items()},
            "units": {p: split.units[ix].tolist() for p, ix in parts.items()},
            "unlabelled_train": ids.iloc[split.train[~labelled[split.train]]].tolist()}


def audit(cfg: Config, data: SeedData) -> list[dict]:
    """The leakage audit of every split mode on this seed's frames (what 00_data shows), written
    beside the split."""
    from kdcore.data import frame_hashes
    from kdcore.data.splits import audit_modes, independent

    table = data.table
    hashes = None if independent(table.groups, table.videos) else frame_hashes(table.frames["rgb_path"].tolist())
    found = audit_modes(data.table.strata, data.table.groups, hashes, data.seed, cfg.block_frames, cfg.gap_frames,
                        data.table.videos, cfg.train_size)
    if is_main_process():
        write_json(Layout(cfg.output).audit(data.seed), found)
    return found
