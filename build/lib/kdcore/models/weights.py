"""Backbone weights from a local file or timm's hub loader; never a silent random init.

``pretrained`` is ``false`` (random init), ``hub`` (timm's own loader: needs internet or a filled
cache) or the path of a timm state dict of the backbone (``.pth``, ``.pt``, ``.bin`` or
``.safetensors``). A local file must provide every tensor the backbone expects, with the right
shapes; only the ImageNet classifier may be left over, since the teacher has its own head.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import timm
import torch
from torch import nn

from kdcore.errors import KDError


def pretrained_kind(pretrained) -> str:
    """'none', 'hub' or 'file'."""
    if pretrained in (False, None, "false", "none", ""):
        return "none"
    if pretrained in (True, "hub"):
        return "hub"
    return "file"


def create_backbone(name: str, pretrained=False, **kwargs) -> nn.Module:
    """A timm backbone without classifier, loaded as ``pretrained`` asks (or kdcore's ``mlp``, which
    has no pretrained weights)."""
    kind = pretrained_kind(pretrained)
    if name == "mlp":
        if kind != "none":
            raise KDError(f"backbone 'mlp' has no pretrained weights (pretrained={pretrained!r})")
        return MLPBackbone(**kwargs)
    try:
        if kind == "hub":
            return timm.create_model(name, pretrained=True, num_classes=0, **kwargs)
        model = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
    except (RuntimeError, TypeError) as e:  # an unknown model; arguments it does not take
        raise KDError(f"backbone {name!r}: cannot create it as asked (pretrained={pretrained!r}): {e}") from None
    except OSError as e:  # the hub loader without network or cache
        raise KDError(f"backbone {name!r}: timm could not fetch hub weights ({e}); "
                      "pass a local weights file as pretrained instead") from None
    if kind == "file":
        load_backbone_file(model, pretrained, name)
    return model


def load_backbone_file(model: nn.Module, path: str | os.PathLike, name: str) -> None:
    path = Path(path)
    if not path.is_file():
        raise KDError(f"pretrained weights for {name!r} not found: {path}")
    try:
        state = timm.models.load_state_dict(str(path), weights_only=True)  # never runs a pickle's code
    except Exception as e:  # a torch or safetensors reader error: the file is not a state dict
        raise KDError(f"{path}: not a readable weights file ({type(e).__name__}: {e})") from None
    state = _adapt(state, model)
    classifier = _classifier_keys(model)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(k for k in set(state) - set(expected) if not k.startswith(classifier))
    if missing or unexpected:
        raise KDError(f"{path}: does not fit backbone {name!r}: {len(missing)} missing tensor(s) "
                      f"{_few(missing)}, {len(unexpected)} unexpected {_few(unexpected)}")
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if state[k].shape != v.shape]
    if wrong:
        raise KDError(f"{path}: shapes do not fit backbone {name!r}: {_few(wrong)}")
    model.load_state_dict({k: state[k] for k in expected}, strict=True)


def _adapt(state: dict, model: nn.Module) -> dict:
    """timm's own checkpoint filter for the family, e.g. resampling a ViT's position embedding."""
    module = importlib.import_module(type(model).__module__)
    filter_fn = getattr(module, "checkpoint_filter_fn", None)
    if filter_fn is None:
        return state
    try:
        return filter_fn(state, model)
    except (RuntimeError, KeyError, ValueError):
        return state  # the key and shape checks that follow say what does not fit


def _classifier_keys(model: nn.Module) -> tuple[str, ...]:
    classifier = model.pretrained_cfg.get("classifier", "fc")
    names = classifier if isinstance(classifier, (list, tuple)) else [classifier]
    return tuple(f"{n}." for n in names)


def _few(keys: list[str], n: int = 3) -> str:
    return "[" + ", ".join(keys[:n]) + (", ..." if len(keys) > n else "") + "]"


def save_backbone(model: nn.Module, path: str | os.PathLike) -> None:
    """Write a backbone's state dict the way timm users exchange them (for tests and tooling)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    else:
        torch.save(model.state_dict(), path)


class MLPBackbone(nn.Module):
    """Gray pixels pooled to ``input_size`` -> Linear-ReLU layers of widths ``hidden``, shaped as a
    timm backbone for the teachers' families: ``input`` and ``first`` (the first layer), ``rest``,
    ``feature_info`` and ``num_features``."""

    def __init__(self, input_size: int = 28, hidden=(20, 20)):
        super().__init__()
        from kdcore.models.student import Grayscale, mlp_layers

        self.input = Grayscale(input_size)
        self.first = mlp_layers(input_size * input_size, hidden[:1])
        self.rest = mlp_layers(hidden[0], hidden[1:])
        self.num_features = hidden[-1]
        self.feature_info = [{"num_chs": hidden[0]}, {"num_chs": hidden[-1]}]
