"""One fit loop for every role: teacher, distilled student, no-KD student, pruning fine-tune.

A role is only a model and a criterion ``(model, batch) -> (loss, logits)``. The loop: AdamW,
cosine learning rate over the epoch budget (stepped per epoch), early stopping and the best
weights on the validation criterion ``select_on`` (``kdcore.training.selection``), and a resumable
checkpoint written atomically after the first epoch, then at most every ``CHECKPOINT_EVERY_S``
seconds, and after the last (with the best weights and the log).
Each epoch's shuffle comes from a generator seeded by (seed, epoch), and the global RNG states
travel in the checkpoint, so a run resumed after a crash ends exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import random
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, fields
from itertools import chain
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from kdcore.data.labels import FLAME2, LabelSet
from kdcore.errors import KDError
from kdcore.evaluation.metrics import classification_metrics, selection_metrics
from kdcore.io import atomic_path, read_json, write_json
from kdcore.layout import FitPaths
from kdcore.progress import progress
from kdcore.seeds import torch_seed
from kdcore.training.board import Board
from kdcore.training.losses import model_inputs
from kdcore.training.selection import DEFAULT as DEFAULT_SELECTION
from kdcore.training.selection import criterion as selection_criterion


class TrainingDiverged(KDError):
    """The loss became NaN or infinite; the best checkpoint so far is left as it was."""


@dataclass
class FitSettings:
    """How one fit runs: its own budget (epochs, patience, lr, batch size, seed), the rest the
    study's settings of the same names (``from_config``)."""

    epochs: int
    patience: int
    lr: float
    batch_size: int
    seed: int
    weight_decay: float
    eval_batch_size: int
    num_workers: int
    device: str
    bf16: bool | None  # None: on CUDA only (``gpu_path_on``)
    channels_last: bool | None
    compile: bool
    deterministic: bool
    select_on: str = DEFAULT_SELECTION
    optimizer: str = "adamw"  # adamw | rmsprop
    lr_schedule: str = "cosine"  # cosine | constant
    progress: bool = True

    @classmethod
    def from_config(cls, cfg, **own) -> FitSettings:
        """``cfg``'s values for every field it shares a name with, ``own`` on top."""
        shared = {f.name: getattr(cfg, f.name) for f in fields(cls) if hasattr(cfg, f.name)}
        return cls(**{**shared, **own})


def resolve_device(name: str = "auto") -> torch.device:
    """CUDA when present (under torchrun, this process's GPU), else the CPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise KDError("config key 'device': 'cuda' asked for, but no CUDA device is available")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed() -> bool:
    """Join the process group torchrun describes in the environment (NCCL on GPUs, else gloo)."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend)
    return True


def set_deterministic(on: bool) -> None:
    """Deterministic CUDA kernels (cuDNN, cuBLAS, scatter/index ops); an op without a deterministic
    version then raises instead of varying. The CPU kernels used here are deterministic already."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on
    torch.use_deterministic_algorithms(on)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main_process() -> bool:
    """The process that evaluates and writes: rank 0 under torchrun, else the only one."""
    return _rank() == 0


def synchronize() -> None:
    """Under torchrun, wait until every rank gets here (and so sees what rank 0 wrote before)."""
    if dist.is_initialized():
        dist.barrier()


@contextmanager
def main_process_first():
    """Rank 0 runs the block first (building a cache, say); the other ranks then find it done."""
    if not is_main_process():
        synchronize()
    yield
    if is_main_process():
        synchronize()


def gpu_path_on(flag: bool | None, device: torch.device) -> bool:
    """Whether a GPU-path setting (bf16, channels_last) applies: None means on CUDA only, so that a
    study written for a GPU runs in fp32 on a CPU unless told otherwise."""
    return device.type == "cuda" if flag is None else flag


def _autocast(device: torch.device, bf16: bool | None):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu_path_on(bf16, device))


def _batches(dataset: Dataset, batch_size: int, epoch: int | None = None, seed: int = 0,
             num_workers: int = 0) -> DataLoader:
    """Shuffled (training, ``epoch`` given) or in order; a DDP rank sees its shard of the training set."""
    generator = sampler = None
    if epoch is not None:
        generator = torch.Generator().manual_seed(torch_seed(seed, "shuffle", epoch))
        if dist.is_initialized():
            sampler = DistributedSampler(dataset, shuffle=True, seed=seed)
            sampler.set_epoch(epoch)
    # a last training batch of one frame cannot pass BatchNorm in training mode: dropped (that frame
    # is in another batch next epoch); otherwise every frame is used
    lonely = epoch is not None and len(dataset) % batch_size == 1 and len(dataset) > 1
    return DataLoader(dataset, batch_size=batch_size, shuffle=epoch is not None and sampler is None,
                      sampler=sampler, generator=generator, num_workers=num_workers,
                      pin_memory=torch.cuda.is_available(), drop_last=lonely,
                      collate_fn=getattr(dataset, "collate", None))


def _to(dataset: Dataset, batch, device: torch.device, channels_last: bool | None):
    """The batch on ``device``; a dataset of uint8 frames scales them there (its ``on_device``)."""
    fmt = torch.channels_last if gpu_path_on(channels_last, device) else torch.contiguous_format
    if hasattr(dataset, "on_device"):
        return dataset.on_device(batch, device, fmt)
    rgb, ir, targets, ids = batch
    rgb = rgb.to(device, non_blocking=True, memory_format=fmt)
    ir = ir.to(device, non_blocking=True, memory_format=fmt) if ir.dim() == 4 else ir.to(device)
    return rgb, ir, targets.to(device, non_blocking=True), ids


def _probabilities(logits: torch.Tensor, labels: LabelSet) -> torch.Tensor:
    return torch.softmax(logits, 1) if labels.multiclass else torch.sigmoid(logits)


def _labels(criterion: nn.Module) -> LabelSet:
    """What the criterion's logits mean (FLAME2's two labels for one that does not say)."""
    return getattr(criterion, "labels", FLAME2)


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, batch_size: int = 64, device: str | torch.device = "auto",
            features: bool = False, bf16: bool | None = None, progress_bar: bool = False,
            labels: LabelSet = FLAME2) -> dict:
    """Logits, probabilities (sigmoids per label, or the softmax over ``labels``' classes), targets
    and ids (and pooled features) for every item, in order."""
    device = resolve_device(device) if isinstance(device, str) else device
    was_training = model.training
    model.eval()
    logits_all, targets, ids, feats = [], [], [], []
    for batch in progress(_batches(dataset, batch_size), progress_bar, desc="predicting",
                          leave=False):
        rgb, ir, y, batch_ids = _to(dataset, batch, device, False)
        with _autocast(device, bf16):
            inputs = model_inputs(model, rgb, ir)
            if features:
                f = model.forward_features(*inputs)
                logits = model.head(f)
                feats.append(f.float().cpu())
            else:
                logits = model(*inputs)
        logits_all.append(logits.float().cpu())
        targets.append(y.cpu())
        ids.extend(batch_ids)
    model.train(was_training)
    logits = torch.cat(logits_all)
    out = {"logits": logits.numpy(), "probs": _probabilities(logits, labels).numpy(), "targets": torch.cat(targets).numpy(),
           "ids": ids}
    if features:
        out["features"] = torch.cat(feats).numpy()
    return out


def _evaluate(model, criterion, dataset, settings, device) -> dict:
    """Validation loss (the criterion's), the selection criteria against the labels and the
    metrics at 0.5, with the evaluation throughput."""
    start = time.perf_counter()
    model.eval()
    losses, logits_all, targets = [], [], []
    with torch.no_grad():
        for batch in _batches(dataset, settings.eval_batch_size, num_workers=settings.num_workers):
            batch = _to(dataset, batch, device, settings.channels_last)
            with _autocast(device, settings.bf16):
                loss, logits = criterion(model, batch)
            losses.append(loss.item() * len(batch[2]))
            logits_all.append(logits.float().cpu())
            targets.append(batch[2].cpu())
    elapsed = time.perf_counter() - start
    logits, targets, labels = torch.cat(logits_all), torch.cat(targets).numpy(), _labels(criterion)
    metrics = {"loss": sum(losses) / len(targets), **selection_metrics(logits.numpy(), targets, labels),
               **classification_metrics(_probabilities(logits, labels).numpy(), targets, labels=labels)}
    return {"metrics": metrics, "frames_per_s": len(targets) / elapsed}


def _train_epoch(model, criterion, optimizer, loader, settings, device, epoch, desc) -> dict:
    model.train()
    criterion.train()
    if hasattr(criterion, "set_epoch"):  # a method's schedule (DKD's warm-up) follows the epoch, resumed or not
        criterion.set_epoch(epoch)
    losses, probs, targets, terms = [], [], [], {}
    bar = progress(loader, settings.progress and _rank() == 0, desc=f"{desc} epoch {epoch + 1}",
                   leave=False, unit="batch")
    for step, batch in enumerate(bar):
        batch = _to(loader.dataset, batch, device, settings.channels_last)
        with _autocast(device, settings.bf16):
            loss, logits = criterion(model, batch)
        if not math.isfinite(loss.item()):
            raise TrainingDiverged(f"{desc}: loss is {loss.item()} at epoch {epoch + 1}, batch {step + 1}; "
                                   "stopped, the best checkpoint so far is kept")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item() * len(batch[2]))
        for name, value in getattr(criterion, "last_terms", {}).items():  # summed on the device: no sync
            terms[name] = terms.get(name, 0.0) + value.double() * len(batch[2])
        probs.append(_probabilities(logits.detach().float(), _labels(criterion)).cpu())
        targets.append(batch[2].cpu())
        bar.set_postfix(loss=f"{loss.item():.4f}")
    probs, targets = torch.cat(probs).numpy(), torch.cat(targets).numpy()
    out = {"loss": sum(losses) / len(targets), **classification_metrics(probs, targets, labels=_labels(criterion))}
    if len(terms) > 1:  # an objective of several terms: each one's epoch mean, unweighted
        out["terms"] = {name: total.item() / len(targets) for name, total in terms.items()}
    return out


def _rng_states() -> dict:
    """Plain types and tensors only, so that checkpoints load with ``weights_only=True``."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_states(states: dict) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = states["numpy"]
    numpy_state["state"]["key"] = np.asarray(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# A crash loses at most this much training; epochs of a second (a CPU demo, an MLP) are not each
# written, which cost a 400-epoch MLP fit 40 of its 93 s (its growing log rewritten every epoch).
CHECKPOINT_EVERY_S = 30.0


def save_checkpoint(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _place(model: nn.Module, criterion: nn.Module, settings: FitSettings) -> torch.device:
    """Model and criterion on the fit's device (in channels_last if asked; deterministic kernels on CUDA)."""
    device = resolve_device(settings.device)
    if device.type == "cuda":
        set_deterministic(settings.deterministic)
    model.to(device)
    criterion.to(device)
    if gpu_path_on(settings.channels_last, device):
        model.to(memory_format=torch.channels_last)
    return device


def _runner(model: nn.Module, settings: FitSettings, device: torch.device) -> nn.Module:
    """What the training steps call: the model, data-parallel under torchrun, compiled if asked."""
    runner = model
    if dist.is_initialized():
        runner = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if settings.compile:
        runner = torch.compile(runner)
    return runner


def fit(model: nn.Module, criterion: nn.Module, train_set: Dataset, val_set: Dataset,
        settings: FitSettings, paths: FitPaths, desc: str = "train", best_meta: dict | None = None) -> dict:
    """Train until the epoch budget or patience runs out; return the log. Resumes from ``paths.last``,
    which is removed once the fit finishes; a finished fit returns its log and trains nothing.
    Each epoch also goes to TensorBoard's event files at ``paths.board`` as it ends.

    ``best_meta`` goes into the best checkpoint beside the weights (architecture, normalization).
    """
    if finished(paths):
        return read_json(paths.log)
    device = _place(model, criterion, settings)
    params = [p for p in chain(model.parameters(), criterion.parameters()) if p.requires_grad]
    optimizer, scheduler = _optimizer(params, settings)
    parts = {"model": model, "criterion": criterion, "optimizer": optimizer, "scheduler": scheduler}
    state = _resume(parts, paths.last, settings.seed, device)
    select = selection_criterion(settings.select_on)
    runner = _runner(model, settings, device)
    written, best = float("-inf"), None  # when the checkpoint was last written; the best weights since
    board = Board(paths.board, logged_settings(settings), state["epoch"], select.name) \
        if paths.board is not None and is_main_process() else None
    with board or nullcontext():
        while state["epoch"] < settings.epochs and state["bad_epochs"] < settings.patience:
            epoch, start = state["epoch"], time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            loader = _batches(train_set, settings.batch_size, epoch, settings.seed, settings.num_workers)
            try:
                train = _train_epoch(runner, criterion, optimizer, loader, settings, device, epoch, desc)
            except TrainingDiverged:
                if is_main_process() and best is not None:  # the best so far is kept, as the error says
                    save_checkpoint(paths.best, best)
                raise
            scheduler.step()
            val = _evaluate(model, criterion, val_set, settings, device)
            elapsed = time.perf_counter() - start
            score = select.score(val["metrics"], epoch + 1)
            if score is None:
                raise KDError(f"{desc}: select_on {select.name!r} is undefined on the validation frames "
                              "(a class with one value there); select on 'bce' instead")
            improved = select.better(score, state["best_score"])
            state["log"].append({"epoch": epoch + 1, "lr": lr, "train": train, "val": val["metrics"],
                                 "improved": improved,
                                 "timing": {"epoch_s": elapsed, "eval_frames_per_s": val["frames_per_s"]}})
            state["train_s"] += elapsed
            if board is not None:
                board.epoch(state["log"][-1], score, select.name)
            if improved:
                state.update(best_score=score, best_epoch=epoch + 1, bad_epochs=0)
                best = {**(best_meta or {}), "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
                        "epoch": epoch + 1, "select_on": select.name, "val_score": score}
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch + 1
            ends = state["epoch"] >= settings.epochs or state["bad_epochs"] >= settings.patience
            if is_main_process() and (ends or time.monotonic() - written >= CHECKPOINT_EVERY_S):
                if best is not None:  # the best weights first: the checkpoint's state names them
                    save_checkpoint(paths.best, best)
                    best = None
                save_checkpoint(paths.last, {**{k: v.state_dict() for k, v in parts.items()}, "state": state,
                                             "rng": _rng_states(), "settings": asdict(settings)})
                write_json(paths.log, training_log(state, settings))
                written = time.monotonic()
    if is_main_process():
        # a finished fit never resumes: its optimizer state (three times the model) is dead weight
        paths.last.unlink(missing_ok=True)
    return training_log(state, settings)


def _resume(parts: dict, last: Path, seed: int, device: torch.device) -> dict:
    """The loop's state from the last checkpoint (every part and the RNGs restored), or a fresh
    start seeded by ``seed``."""
    if not last.exists():
        seed_everything(torch_seed(seed, "init"))
        return {"epoch": 0, "best_score": None, "best_epoch": 0, "bad_epochs": 0, "log": [], "train_s": 0.0}
    checkpoint = torch.load(last, weights_only=True, map_location=device)
    for name, part in parts.items():
        part.load_state_dict(checkpoint[name])
    _set_rng_states(checkpoint["rng"])
    return checkpoint["state"]


def training_log(state: dict, settings: FitSettings) -> dict:
    """The epochs, which one was kept and on what, why the fit stopped, and whether the criterion
    ever moved (a flat one chose the kept epoch for no reason)."""
    stopped = ("early_stopping" if state["bad_epochs"] >= settings.patience
               else "epoch_budget" if state["epoch"] >= settings.epochs else None)
    select = selection_criterion(settings.select_on)
    values = [select.score(e["val"], e["epoch"]) for e in state["log"]]
    return {"epochs": state["log"], "best_epoch": state["best_epoch"],
            "selection": {"select_on": select.name, "criterion": select.label, "best": state["best_score"],
                          "flat": select.flat(values)},
            "stopped_by": stopped,
            "settings": logged_settings(settings),
            "timing": {"train_s": state["train_s"]}}


LOGGED_WHEN_SET = {"optimizer": "adamw", "lr_schedule": "cosine"}  # added later: logged when not the default


def logged_settings(settings: FitSettings) -> dict:
    """The fit's settings as its log records them: all but the progress bar, and the optimizer and
    schedule where they are not AdamW and cosine (logs written before these could be chosen have
    neither, and read the same)."""
    return {k: v for k, v in asdict(settings).items()
            if k != "progress" and not (k in LOGGED_WHEN_SET and v == LOGGED_WHEN_SET[k])}


def _optimizer(params, settings: FitSettings):
    """AdamW with a cosine schedule over the epoch budget (stepped per epoch), or as ``settings``
    say: RMSprop at the defaults of Keras 0.x (rho 0.9, epsilon 1e-6, which Keras adds under the
    square root and torch outside it; ``weight_decay`` as set), a constant rate."""
    if settings.optimizer == "rmsprop":
        optimizer = torch.optim.RMSprop(params, lr=settings.lr, alpha=0.9, eps=1e-6, weight_decay=settings.weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    if settings.lr_schedule == "constant":
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)


def load_best(model: nn.Module, path: Path) -> nn.Module:
    checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    model.load_state_dict(checkpoint["model"])
    return model


def finished(paths: FitPaths) -> bool:
    """A fit whose log says it stopped (budget or patience) and whose best weights exist."""
    return paths.best.exists() and paths.log.exists() and read_json(paths.log).get("stopped_by") is not None
