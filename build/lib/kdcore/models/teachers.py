"""Dual-branch RGB+IR teachers: one mechanism, one small fusion definition per family.

Every teacher is: a trunk per modality -> a fusion -> a shared tail -> pooled features -> a linear
head. A family says only which parts of its timm backbone form the trunk and the tail, how two
trunk outputs merge, and what is frozen when the weights are pretrained. Any timm backbone of a
family works, so small members run the very same code on a CPU. A teacher may also read one
modality alone: RGB (``rgb_only``, the control arm) or IR (``ir_only``: what IR alone knows).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from kdcore.errors import KDError
from kdcore.models.registry import STUDY_TEACHERS, TEACHERS, TeacherSpec
from kdcore.models.stages import MAP, NHWC, TOKENS, Stage, path_of
from kdcore.models.weights import create_backbone, pretrained_kind

__all__ = ["FAMILIES", "STUDY_TEACHERS", "TEACHERS", "DualBranchTeacher", "Family", "TeacherSpec", "create_teacher"]


class ConcatProject(nn.Module):
    """Concatenate two feature maps along channels, project back to one map's width (a 1x1 conv).

    ``channels_last`` maps (B, H, W, C), as timm's Swin keeps them, use the equivalent Linear.
    """

    def __init__(self, channels: int, channels_last: bool = False):
        super().__init__()
        self.channels_last = channels_last
        if channels_last:
            self.project = nn.Sequential(nn.Linear(2 * channels, channels), nn.LayerNorm(channels))
        else:
            self.project = nn.Sequential(nn.Conv2d(2 * channels, channels, 1, bias=False),
                                         nn.BatchNorm2d(channels), nn.ReLU(inplace=True))

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([rgb, ir], dim=-1 if self.channels_last else 1))


class TokenConcat(nn.Module):
    """Two token sequences become one: the shared transformer attends across modalities."""

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
        return torch.cat([rgb, ir], dim=1)


class Pool(nn.Module):
    """Global average pool of a (B, C, H, W) or (B, H, W, C) map to (B, C)."""

    def __init__(self, channels_last: bool = False):
        super().__init__()
        self.dims = (1, 2) if channels_last else (2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(self.dims)


class ViTTokens(nn.Module):
    """A modality's patch embedding, class token and learned position embedding."""

    def __init__(self, vit: nn.Module):
        super().__init__()
        self.patch_embed, self.cls_token, self.pos_embed = vit.patch_embed, vit.cls_token, vit.pos_embed
        self.pos_drop = vit.pos_drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.pos_drop(x + self.pos_embed)


class ViTTail(nn.Module):
    """Shared blocks over all tokens; the pooled feature is the mean of the branches' class tokens."""

    def __init__(self, vit: nn.Module, branches: int):
        super().__init__()
        self.norm_pre, self.blocks, self.norm = vit.norm_pre, vit.blocks, vit.norm
        self.branches = branches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.blocks(self.norm_pre(x)))
        per_branch = x.shape[1] // self.branches
        return x[:, ::per_branch].mean(1)  # the class token opens each branch's sequence


@dataclass(frozen=True)
class Family:
    """How one family splits its backbone. Part names are paths of the timm model's submodules."""

    name: str
    trunk: tuple[str, ...]
    tail: tuple[str, ...]
    frozen: tuple[str, ...]
    fused_stage: int  # index into timm's feature_info: the width where the branches meet
    channels_last: bool = False
    sized: bool = False  # timm needs img_size (position embeddings, attention windows)

    def make_trunk(self, backbone: nn.Module) -> nn.Module:
        return nn.Sequential(*(backbone.get_submodule(p) for p in self.trunk))

    def make_fusion(self, backbone: nn.Module) -> nn.Module:
        return ConcatProject(backbone.feature_info[self.fused_stage]["num_chs"], self.channels_last)

    def make_tail(self, backbone: nn.Module, branches: int) -> nn.Module:
        return nn.Sequential(*(backbone.get_submodule(p) for p in self.tail), Pool(self.channels_last))

    def freeze(self, backbone: nn.Module) -> None:
        for path in self.frozen:
            for p in backbone.get_submodule(path).parameters():
                p.requires_grad_(False)

    def stage(self, path: str, teacher: DualBranchTeacher) -> Stage:
        """How the output of the module at ``path`` is laid out."""
        return Stage(path, NHWC if self.channels_last else MAP)

    def stages(self, teacher: DualBranchTeacher, backbones: dict[str, nn.Module]) -> dict[str, Stage]:
        """The teacher's stages, from timm's ``feature_info`` of each branch's backbone: each trunk's
        per branch (``rgb.layer2``, ``ir.layer2``), the fused map (``fusion``), then the shared
        tail's under their own names (``layer4``). Found by identity: the teacher holds the very
        modules of its backbones, so no path is written twice."""
        trunks, tail = {}, {}
        for branch, backbone in backbones.items():
            for info in backbone.feature_info:
                path = path_of(teacher, backbone.get_submodule(info["module"])) if "module" in info else None
                if path is None:  # kdcore's MLP backbone (vectors, not maps), or a part the teacher left out
                    continue
                if path.startswith("tail."):
                    tail[info["module"]] = self.stage(path, teacher)
                else:
                    trunks[f"{branch}.{info['module']}"] = self.stage(path, teacher)
        fused = {"fusion": self.stage("fusion", teacher)} if isinstance(teacher.fusion, ConcatProject) else {}
        return {**trunks, **fused, **tail}


class Concat(nn.Module):
    """Two feature vectors side by side, projected back to one's width (an MLP's fusion)."""

    def __init__(self, width: int):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU())

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([rgb, ir], dim=1))


@dataclass(frozen=True)
class MLPFamily(Family):
    """The MLP backbone (``kdcore.models.student.MLPStudent``'s layers): the first hidden layer per
    modality, the rest shared; vectors, not maps, so nothing to pool."""

    def make_fusion(self, backbone: nn.Module) -> nn.Module:
        return Concat(backbone.feature_info[self.fused_stage]["num_chs"])

    def make_tail(self, backbone: nn.Module, branches: int) -> nn.Module:
        return nn.Sequential(*(backbone.get_submodule(p) for p in self.tail))


@dataclass(frozen=True)
class ViTFamily(Family):
    def stage(self, path: str, teacher: DualBranchTeacher) -> Stage:
        return Stage(path, TOKENS, branches=len(teacher.modalities), prefix=1)

    def make_trunk(self, backbone: nn.Module) -> nn.Module:
        return ViTTokens(backbone)

    def make_fusion(self, backbone: nn.Module) -> nn.Module:
        return TokenConcat()

    def make_tail(self, backbone: nn.Module, branches: int) -> nn.Module:
        return ViTTail(backbone, branches)


FAMILIES = {f.name: f for f in (
    # RGB and IR trunks through layer3, concat -> 1x1 conv -> shared layer4
    Family("resnet", trunk=("conv1", "bn1", "act1", "maxpool", "layer1", "layer2", "layer3"),
           tail=("layer4",), frozen=("conv1", "bn1", "layer1", "layer2"), fused_stage=-2),
    # trunks through the last block stage, concat -> 1x1 conv -> shared head conv
    Family("efficientnet", trunk=("conv_stem", "bn1", "blocks"), tail=("conv_head", "bn2"),
           frozen=("conv_stem", "bn1", *(f"blocks.{i}" for i in range(5))), fused_stage=-1),
    # a patch embedding, class token and position embedding per modality, tokens concatenated
    ViTFamily("vit", trunk=("patch_embed",), tail=("blocks", "norm"),
              frozen=("patch_embed", *(f"blocks.{i}" for i in range(6))), fused_stage=-1, sized=True),
    # patch partition and stages 0-1 per modality, concat -> 1x1 -> shared stages 2-3
    Family("swin", trunk=("patch_embed", "layers.0", "layers.1"), tail=("layers.2", "layers.3", "norm"),
           frozen=("patch_embed", "layers.0", "layers.1"), fused_stage=1, channels_last=True, sized=True),
    # gray pixels -> the first hidden layer per modality, concat -> linear -> the other hidden layers
    MLPFamily("mlp", trunk=("input", "first"), tail=("rest",), frozen=(), fused_stage=0),
)}


class DualBranchTeacher(nn.Module):
    """RGB and IR trunks, fused, then a shared tail and head; or one trunk alone: RGB
    (``rgb_only``) or IR (``ir_only``)."""

    def __init__(self, family: Family, backbone: str, img_size: int, pretrained=False,
                 ir_init: str = "rgb", rgb_only: bool = False, num_classes: int = 2,
                 backbone_kwargs: dict | None = None, freeze: bool | None = None, ir_only: bool = False):
        """``freeze``: None freezes the family's early parts of every pretrained branch; True
        freezes them as if pretrained (for profiling), False trains everything."""
        super().__init__()
        if ir_init not in ("rgb", "random"):
            raise KDError(f"ir_init must be 'rgb' or 'random' (got {ir_init!r})")
        if rgb_only and ir_only:
            raise KDError("a teacher reads RGB alone (rgb_only) or IR alone (ir_only), not neither")
        kwargs = dict(backbone_kwargs or {}, **({"img_size": img_size} if family.sized else {}))
        rgb = create_backbone(backbone, pretrained, **kwargs)
        if freeze if freeze is not None else pretrained_kind(pretrained) != "none":
            family.freeze(rgb)  # frozen parts of the shared tail come from this backbone too
        self.family = family.name
        self.modalities = ("rgb",) if rgb_only else ("ir",) if ir_only else ("rgb", "ir")
        self.rgb_trunk = family.make_trunk(rgb)
        self.ir_trunk = self.fusion = None
        if ir_only:  # the one trunk reads IR
            self.ir_trunk, self.rgb_trunk = self.rgb_trunk, None
        elif not rgb_only:
            ir_weights = pretrained if ir_init == "rgb" else False
            ir = create_backbone(backbone, ir_weights, **kwargs)
            if freeze if freeze is not None else pretrained_kind(ir_weights) != "none":
                family.freeze(ir)
            self.ir_trunk = family.make_trunk(ir)
            self.fusion = family.make_fusion(rgb)
        self.tail = family.make_tail(rgb, branches=len(self.modalities))
        self.num_features = rgb.num_features
        self.head = nn.Linear(self.num_features, num_classes)
        backbones = {"ir" if ir_only else "rgb": rgb, **({"ir": ir} if self.fusion is not None else {})}
        self.stages = family.stages(self, backbones)  # name -> Stage: what feature methods read

    def forward_features(self, rgb: torch.Tensor, ir: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled penultimate features: what the head sees."""
        if self.rgb_trunk is None:
            return self.tail(self.ir_trunk(ir))
        x = self.rgb_trunk(rgb)
        if self.ir_trunk is not None:
            x = self.fusion(x, self.ir_trunk(ir))
        return self.tail(x)

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.forward_features(rgb, ir))

    def train(self, mode: bool = True):
        """Frozen BatchNorm layers stay in eval mode: their running statistics are pretrained too."""
        super().train(mode)
        for m in self.modules():
            if isinstance(m, _BatchNorm) and not any(p.requires_grad for p in m.parameters()):
                m.eval()
        return self


def create_teacher(name: str, img_size: int = 224, pretrained=False, ir_init: str = "rgb",
                   rgb_only: bool = False, family: str | None = None, backbone: str | None = None,
                   backbone_kwargs: dict | None = None, freeze: bool | None = None, ir_only: bool = False,
                   num_classes: int = 2) -> DualBranchTeacher:
    """A registered teacher by name, or any timm ``backbone`` of a ``family``."""
    if backbone is None:
        if name not in TEACHERS:
            raise KDError(f"unknown teacher {name!r}; known: {', '.join(TEACHERS)} "
                          f"(or give family and backbone)")
        spec = TEACHERS[name]
        family, backbone = spec.family, spec.backbone
        backbone_kwargs = {**spec.kwargs, **(backbone_kwargs or {})}
    if family not in FAMILIES:
        raise KDError(f"teacher {name!r}: unknown family {family!r}; known: {', '.join(FAMILIES)}")
    return DualBranchTeacher(FAMILIES[family], backbone, img_size, pretrained, ir_init, rgb_only, num_classes,
                             backbone_kwargs=backbone_kwargs, freeze=freeze, ir_only=ir_only)
