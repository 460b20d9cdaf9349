"""The registered teachers by name: which family and which timm backbone each is.

Plain data (no torch, no timm), so that a params file's teachers are checked without loading a
model library; ``kdcore.models.teachers`` builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TeacherSpec:
    family: str
    backbone: str
    kwargs: dict = field(default_factory=dict)


TEACHERS = {
    # the study's four teachers
    "resnet-152": TeacherSpec("resnet", "resnet152"),
    "efficientnet-b7": TeacherSpec("efficientnet", "efficientnet_b7"),
    "vit-b-16": TeacherSpec("vit", "vit_base_patch16_224"),
    "swin-tiny": TeacherSpec("swin", "swin_tiny_patch4_window7_224"),
    # small members of the same families, for CPUs and tests
    "resnet-18": TeacherSpec("resnet", "resnet18"),
    "efficientnet-b0": TeacherSpec("efficientnet", "efficientnet_b0"),
    "vit-tiny": TeacherSpec("vit", "vit_tiny_patch16_224"),
    "swin-micro": TeacherSpec("swin", "swin_tiny_patch4_window7_224",
                              dict(embed_dim=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8), window_size=4)),
}
STUDY_TEACHERS = ("resnet-152", "efficientnet-b7", "vit-b-16", "swin-tiny")
