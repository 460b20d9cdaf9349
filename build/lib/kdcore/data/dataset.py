"""The torch Dataset over cached frames: (rgb, ir, labels, id), or RGB only.

Items stay uint8 until they reach the device: a worker only copies a frame out of the cache (and
augments it, when asked), the host moves a quarter of the bytes float32 would take, and the
device scales whole batches (``FrameDataset.on_device``), so the host does almost nothing per frame.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


def normalize(images: torch.Tensor, stats: dict) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) min-max scaled with the training split's stats,
    on the images' own device (a batch comes out channels_last in memory, at no cost)."""
    lo = torch.tensor(stats["min"], dtype=torch.float32, device=images.device)
    hi = torch.tensor(stats["max"], dtype=torch.float32, device=images.device)
    # in place: the same numbers as (x - lo) / (hi - lo), 4x faster without two more batch-sized buffers
    return images.to(torch.float32, copy=True).sub_(lo).div_(hi - lo).movedim(-1, -3)


def _augmentation(size: int):
    """Flips and a random resized crop (torchvision, loaded only where a study augments)."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
                       v2.RandomResizedCrop(size=(size, size), scale=(0.7, 1.0), antialias=True)])


class FrameDataset(Dataset):
    """Frames ``indices`` of the cached arrays; ``ir=None`` makes it RGB-only (ir is then empty).

    Items are uint8 (H, W, 3), as cached; a DataLoader gathers a whole batch at once
    (``__getitems__``) and takes ``collate_fn=FrameDataset.collate``. ``on_device`` moves a batch and
    scales it there, ``normalized`` gives scaled frames on the CPU (calibration, parity).
    """

    def __init__(self, rgb: np.ndarray, ir: np.ndarray | None, labels: np.ndarray, ids: list[str],
                 indices: np.ndarray, stats: dict, augment: bool = False):
        self.rgb, self.ir, self.labels, self.ids = rgb, ir, labels, ids
        self.indices = np.asarray(indices)
        self.stats = stats
        self.augment = _augmentation(rgb.shape[1]) if augment else None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int):
        i = int(self.indices[item])
        rgb = torch.from_numpy(np.array(self.rgb[i]))
        ir = torch.from_numpy(np.array(self.ir[i])) if self.ir is not None else torch.empty(0, dtype=torch.uint8)
        if self.augment is not None:
            rgb, ir = self._augmented(rgb, ir)
        return rgb, ir, torch.tensor(self.labels[i]), self.ids[i]

    def __getitems__(self, items: list[int]):
        """A whole batch, as ``collate`` passes it on: one gather from the cache instead of a copy and a
        tensor per frame, which cost the small models (the MNIST MLPs) more than their steps did."""
        if self.augment is not None:  # each pair its own flips and crop, drawn in the batch's order
            rgb, ir, labels, ids = zip(*(self[i] for i in items), strict=True)
            return torch.stack(rgb), torch.stack(ir), torch.stack(labels), list(ids)
        rows = self.indices[np.asarray(items, dtype=np.int64)]
        rgb = torch.from_numpy(np.asarray(self.rgb[rows]))
        ir = torch.from_numpy(np.asarray(self.ir[rows])) if self.ir is not None else \
            torch.empty((len(rows), 0), dtype=torch.uint8)
        return rgb, ir, torch.from_numpy(np.asarray(self.labels[rows])), [self.ids[i] for i in rows]

    @staticmethod
    def collate(batch):
        """The DataLoader's collate for batches ``__getitems__`` has already put together."""
        return batch

    def _augmented(self, rgb: torch.Tensor, ir: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same flips and crop for both images of a pair (torchvision works channels-first)."""
        from torchvision import tv_tensors

        images = [tv_tensors.Image(x.permute(2, 0, 1)) for x in (rgb, ir) if x.numel()]
        out = self.augment(*images) if len(images) > 1 else (self.augment(images[0]),)
        out = [x.as_subclass(torch.Tensor).permute(1, 2, 0).contiguous() for x in out]
        return out[0], out[1] if len(out) > 1 else ir

    def on_device(self, batch, device: torch.device, memory_format=torch.contiguous_format):
        """A collated uint8 batch -> float32 images on ``device`` (asynchronous from pinned memory)."""
        rgb, ir, targets, ids = batch

        def scaled(images, modality):
            images = normalize(images.to(device, non_blocking=True), self.stats[modality])
            return images.contiguous(memory_format=memory_format)

        ir = scaled(ir, "ir") if ir.dim() == 4 else ir.to(device).float()  # RGB-only: ir is empty
        return scaled(rgb, "rgb"), ir, targets.to(device, non_blocking=True), ids

    def normalized(self, items) -> torch.Tensor:
        """Scaled RGB frames of these items, on the CPU, as the models see them."""
        return normalize(torch.stack([self[int(i)][0] for i in items]), self.stats["rgb"]).contiguous()
