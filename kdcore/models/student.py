"""The RGB-only student: four conv blocks, global average pool, a two-layer head (~1.7 M params)."""

from __future__ import annotations

import itertools

import torch
from torch import nn


def conv_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2))


class Student(nn.Module):
    """conv3x3-BN-ReLU-maxpool x4 (3->64->128->256->512), GAP, FC 512->256 (ReLU, dropout) -> 2.

    ``stem_stride=2`` halves the first convolution's output: about a quarter of the compute.
    """

    modalities = ("rgb",)

    def __init__(self, widths=(64, 128, 256, 512), hidden: int = 256, num_classes: int = 2,
                 dropout: float = 0.3, stem_stride: int = 1):
        super().__init__()
        channels = (3, *widths)
        self.features = nn.Sequential(*(conv_block(a, b, stem_stride if i == 0 else 1)
                                        for i, (a, b) in enumerate(itertools.pairwise(channels))))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(widths[-1], hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, num_classes)
        self.num_features = hidden

    def forward_features(self, rgb: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features: what the head sees."""
        return self.hidden(self.pool(self.features(rgb)))

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor | None = None, with_features: bool = False):
        """Logits; with ``with_features``, (logits, features) from one pass (for feature hints)."""
        features = self.forward_features(rgb)
        logits = self.head(features)
        return (logits, features) if with_features else logits
