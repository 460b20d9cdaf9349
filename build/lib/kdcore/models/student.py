"""The RGB-only students: the study's CNN (four conv blocks, global average pool, a two-layer head;
~1.7 M params), and a small MLP (the students of Lopez-Paz et al.'s MNIST experiment).

A student is self-describing: ``arch`` is what rebuilds it (``make_student``), so a pruned student,
only narrower, reloads without the unpruned architecture.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from kdcore.models.stages import Stage


def conv_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2))


class RGBStudent(nn.Module):
    """What every student shares: it reads RGB alone, and its head sees ``forward_features``."""

    modalities = ("rgb",)

    def forward_features(self, rgb: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor | None = None, with_features: bool = False):
        """Logits; with ``with_features``, (logits, features) from one pass (for feature hints)."""
        features = self.forward_features(rgb)
        logits = self.head(features)
        return (logits, features) if with_features else logits


class Student(RGBStudent):
    """conv3x3-BN-ReLU-maxpool x4 (3->64->128->256->512), GAP, FC 512->256 (ReLU, dropout) -> 2.

    ``stem_stride=2`` halves the first convolution's output: about a quarter of the compute.
    """

    family = "cnn"

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
        # what feature methods read: each conv block's output (after its max-pool)
        self.stages = {f"block{i + 1}": Stage(f"features.{i}") for i in range(len(widths))}

    def forward_features(self, rgb: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features: what the head sees."""
        return self.hidden(self.pool(self.features(rgb)))

    @property
    def arch(self) -> dict:
        """The constructor's arguments that rebuild this student (pruned: narrower widths)."""
        arch = {"widths": [block[0].out_channels for block in self.features], "hidden": self.hidden[0].out_features,
                "stem_stride": self.features[0][0].stride[0]}
        if self.head.out_features != 2:  # FLAME2's two labels: files as they were before label sets
            arch["num_classes"] = self.head.out_features
        return arch


class Grayscale(nn.Module):
    """The mean of the image's channels, pooled to ``size`` x ``size`` and flattened: what an MLP
    reads. A gray image stored as RGB (equal channels) gives back its gray values exactly; an image
    stored at k times its size by pixel replication gives back its pixels at ``size``."""

    def __init__(self, size: int | None = None):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.mean(1, keepdim=True)
        if self.size is not None and x.shape[-1] != self.size:
            x = nn.functional.adaptive_avg_pool2d(x, self.size)
        return x.flatten(1)


def mlp_layers(inputs: int, hidden) -> nn.Sequential:
    """Linear-ReLU layers of the given widths."""
    widths = (inputs, *hidden)
    return nn.Sequential(*(layer for a, b in itertools.pairwise(widths) for layer in (nn.Linear(a, b), nn.ReLU())))


class MLPStudent(RGBStudent):
    """Gray pixels (pooled to ``input_size``) -> Linear-ReLU hidden layers -> head: the student of
    Lopez-Paz et al. (two hidden layers of 20 on 7x7 MNIST digits)."""

    family = "mlp"

    def __init__(self, input_size: int = 7, hidden=(20, 20), num_classes: int = 2):
        super().__init__()
        self.input = Grayscale(input_size)
        self.hidden = mlp_layers(input_size * input_size, hidden)
        self.head = nn.Linear(hidden[-1], num_classes)
        self.num_features = hidden[-1]

    def forward_features(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.hidden(self.input(rgb))

    @property
    def arch(self) -> dict:
        linears = [m for m in self.hidden if isinstance(m, nn.Linear)]
        return {"family": self.family, "input_size": self.input.size, "hidden": [m.out_features for m in linears],
                "num_classes": self.head.out_features}


STUDENTS = {"cnn": Student, "mlp": MLPStudent}


def make_student(arch: dict) -> nn.Module:
    """A student from its ``arch`` (``family`` names its class: the CNN when absent)."""
    arch = dict(arch)
    return STUDENTS[arch.pop("family", "cnn")](**arch)
