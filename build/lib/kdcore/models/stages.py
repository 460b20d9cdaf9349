"""A model's named stages: intermediate feature maps read without editing the model.

Every model names its stages once, beside its definition: a ``stages`` dict of stage name -> ``Stage``
(the path of the module whose output it is, and how that output is laid out). Teachers take their
stages from timm's own ``feature_info`` (see ``kdcore.models.teachers``), the CNN student names its
conv blocks. ``StageTap`` reads them with forward hooks for the length of one forward pass, and
turns every layout into one: a (B, C, H, W) map. ViT tokens become maps here, once: class tokens
dropped, each branch's patch tokens on their grid, the branches averaged (as the teacher's pooled
feature averages their class tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from kdcore.errors import KDError

MAP, NHWC, TOKENS = "map", "nhwc", "tokens"  # (B, C, H, W); (B, H, W, C) as timm's Swin; (B, N, C) ViT tokens


@dataclass(frozen=True)
class Stage:
    path: str  # the module whose output it is, as named by ``model.named_modules()``
    layout: str = MAP
    branches: int = 1  # TOKENS: how many branches' sequences are concatenated
    prefix: int = 0  # TOKENS: tokens before each branch's patch grid (a class token: 1)


def model_stages(model: nn.Module) -> dict[str, Stage]:
    """The stages a model declares ({} for one that declares none: an MLP, the oracle)."""
    return dict(getattr(getattr(model, "module", model), "stages", {}) or {})


def as_map(x: torch.Tensor, stage: Stage) -> torch.Tensor:
    """A stage's output as a (B, C, H, W) map."""
    if stage.layout == NHWC:
        return x.permute(0, 3, 1, 2)
    if stage.layout == TOKENS:
        batch, tokens, channels = x.shape
        per_branch = tokens // stage.branches
        grid = x.reshape(batch, stage.branches, per_branch, channels)[:, :, stage.prefix:].mean(1)
        side = math.isqrt(grid.shape[1])
        return grid.transpose(1, 2).reshape(batch, channels, side, side)
    return x


def path_of(root: nn.Module, module: nn.Module) -> str | None:
    """Where ``module`` sits in ``root`` (None if it is not part of it)."""
    return next((name for name, m in root.named_modules() if m is module), None)


class StageTap:
    """Forward hooks on a model's named stages while the block runs; ``maps`` holds their
    outputs as (B, C, H, W) maps. Nothing stays attached to the model afterwards, so a trained
    student is saved and exported exactly as without the tap."""

    def __init__(self, model: nn.Module, names):
        self.model = getattr(model, "module", model)  # DDP: the hooks go on the wrapped model
        declared = model_stages(self.model)
        unknown = [n for n in names if n not in declared]
        if unknown:
            raise KDError(f"{type(self.model).__name__} has no stage {unknown[0]!r}; its stages: "
                          f"{', '.join(declared) or 'none'}")
        self.stages = {n: declared[n] for n in names}
        self.maps: dict[str, torch.Tensor] = {}
        self._handles = []

    def __enter__(self) -> StageTap:
        self.maps = {}
        for name, stage in self.stages.items():
            module = self.model.get_submodule(stage.path)
            self._handles.append(module.register_forward_hook(self._keep(name, stage)))
        return self

    def _keep(self, name: str, stage: Stage):
        def hook(module, inputs, output):
            self.maps[name] = as_map(output, stage)
        return hook

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def stage_shapes(model: nn.Module, inputs: tuple) -> dict[str, tuple[int, ...]]:
    """Each declared stage's (C, H, W) for one forward pass of ``inputs`` in eval mode (meta
    tensors work: no memory, no compute)."""
    stages, was_training = model_stages(model), model.training
    model.eval()
    try:
        with torch.no_grad(), StageTap(model, list(stages)) as tap:
            model(*inputs)
    finally:
        model.train(was_training)
    return {name: tuple(tap.maps[name].shape[1:]) for name in stages}
