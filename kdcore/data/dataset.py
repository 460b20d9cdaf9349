"""The torch Dataset over cached frames: (rgb, ir, labels, id), or RGB only."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2


def normalize(images: torch.Tensor, stats: dict) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) min-max scaled with the training split's stats."""
    lo = torch.tensor(stats["min"], dtype=torch.float32).view(3, 1, 1)
    hi = torch.tensor(stats["max"], dtype=torch.float32).view(3, 1, 1)
    x = images.movedim(-1, -3).float()
    return (x - lo) / (hi - lo)


class FrameDataset(Dataset):
    """Frames ``indices`` of the cached arrays; ``ir=None`` makes it RGB-only (ir is then empty)."""

    def __init__(self, rgb: np.ndarray, ir: np.ndarray | None, labels: np.ndarray, ids: list[str],
                 indices: np.ndarray, stats: dict, augment: bool = False):
        self.rgb, self.ir, self.labels, self.ids = rgb, ir, labels, ids
        self.indices = np.asarray(indices)
        self.stats = stats
        size = rgb.shape[1]
        self.augment = v2.Compose([
            v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
            v2.RandomResizedCrop(size=(size, size), scale=(0.7, 1.0), antialias=True),
        ]) if augment else None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int):
        i = int(self.indices[item])
        rgb = normalize(torch.from_numpy(np.array(self.rgb[i])), self.stats["rgb"])
        ir = (normalize(torch.from_numpy(np.array(self.ir[i])), self.stats["ir"])
              if self.ir is not None else torch.empty(0))
        if self.augment is not None:
            if self.ir is not None:
                rgb, ir = self.augment(tv_tensors.Image(rgb), tv_tensors.Image(ir))
            else:
                rgb = self.augment(tv_tensors.Image(rgb))
            rgb, ir = rgb.as_subclass(torch.Tensor), ir.as_subclass(torch.Tensor)
        return rgb, ir, torch.tensor(self.labels[i]), self.ids[i]
