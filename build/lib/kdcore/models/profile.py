"""What a model costs: parameters, multiply-accumulates, size on disk, latency.

MACs come from torch's FlopCounterMode (a matmul of (m, k) x (k, n) counts m*k*n MACs), with timm's
fused attention switched off so that attention's matmuls are seen: this reproduces torchvision's
published figures. thop's count is kept beside it because the reference implementation reported
it; thop misses attention and counts some layers differently.
"""

from __future__ import annotations

import copy
import io
import statistics
import time
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params_total": total, "params_trainable": trainable, "params_frozen": total - trainable}


@contextmanager
def unfused_attention(model: nn.Module):
    """timm modules read the fused-attention switch when built; flip their flags for a while."""
    modules = [m for m in model.modules() if getattr(m, "fused_attn", None) is True]
    for m in modules:
        m.fused_attn = False
    try:
        yield
    finally:
        for m in modules:
            m.fused_attn = True


def count_macs(model: nn.Module, inputs: tuple) -> int:
    """Multiply-accumulates of one forward pass (FLOPs / 2)."""
    with torch.no_grad(), unfused_attention(model), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops() // 2


def count_macs_thop(model: nn.Module, inputs: tuple) -> int | None:
    """thop's figure, or None where thop cannot trace the model."""
    from thop import profile as thop_profile

    probe = copy.deepcopy(model)  # thop leaves buffers (total_ops, ...) on every module it counts
    try:
        macs, _ = thop_profile(probe, inputs=inputs, verbose=False)
    except Exception:  # thop's hooks fail on some layer types; the figure is informative only
        return None
    return int(macs)


def size_mb(model: nn.Module) -> float:
    """Bytes of the serialized state dict, in MB (10^6 bytes)."""
    tensors = [t for t in model.state_dict().values() if isinstance(t, torch.Tensor)]
    if any(t.is_meta for t in tensors):  # nothing to serialize: count the bytes
        return sum(t.numel() * t.element_size() for t in tensors) / 1e6
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


def latency_ms(model: nn.Module, inputs: tuple, repeats: int = 20, warmup: int = 3) -> dict:
    """Median wall time of a forward pass after warm-up, with the thread count it ran on."""
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(*inputs)
            if inputs[0].is_cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "repeats": repeats,
            "batch": int(inputs[0].shape[0]), "threads": torch.get_num_threads()}


def example_inputs(model: nn.Module, img_size: int, batch: int = 1, device="cpu") -> tuple:
    """One random image per modality the model reads."""
    modalities = getattr(model, "modalities", ("rgb",))
    pair = "ir" in modalities  # a model reading IR takes (rgb, ir), as kdcore.training.losses.model_inputs gives
    return tuple(torch.randn(batch, 3, img_size, img_size, device=device) for _ in range(2 if pair else 1))


def profile(model: nn.Module, img_size: int, thop: bool = True) -> dict:
    """Parameters, MACs (and thop's), size: everything that needs no timing."""
    inputs = example_inputs(model, img_size, device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    out = {**count_params(model), "macs": count_macs(model, inputs), "img_size": img_size}
    out["gmacs"] = out["macs"] / 1e9
    out["gflops"] = 2 * out["gmacs"]
    out["size_mb"] = size_mb(model)
    if thop:
        out["macs_thop"] = count_macs_thop(model, inputs)
    model.train(was_training)
    return out
