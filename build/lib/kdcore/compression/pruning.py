"""Structured pruning that really compresses: whole channels removed (torch-pruning, L1 magnitude),
not masked. A pruned student is again a ``Student``, only narrower, so its checkpoint records the
widths and reloads without the unpruned architecture.
"""

from __future__ import annotations

import torch

from kdcore.models.checkpoint import student_arch
from kdcore.models.student import make_student


def prune_student(student: torch.nn.Module, sparsity: float, img_size: int) -> torch.nn.Module:
    """Remove ``sparsity`` of the channels of every conv and hidden layer, by L1 norm (rounded so
    that each layer keeps a multiple of 8 channels)."""
    import torch_pruning as tp

    model = make_student(student_arch(student))
    model.load_state_dict(student.state_dict())
    model.eval()
    example = torch.randn(1, 3, img_size, img_size)
    # round_to=8: channel counts that fill the CPU's SIMD lanes; 38 channels ran slower than 32
    pruner = tp.pruner.MetaPruner(model, example, importance=tp.importance.MagnitudeImportance(p=1),
                                  pruning_ratio=sparsity, ignored_layers=[model.head], round_to=8)
    pruner.step()
    pruned = make_student(student_arch(model))  # the same network, built narrow from the start
    pruned.load_state_dict(model.state_dict())
    return pruned
