"""A fit's curves as TensorBoard event files, written as each epoch ends, so a long fit can be
watched while it runs (``kd board``, or ``tensorboard --logdir <output>/board``; MLflow and W&B
import the same files). The per-epoch JSON log stays the reports' source; these are a view of it.

Per epoch: the training loss and each of its terms (``train/...``), every validation number
(``val/...``), the learning rate and the epoch's seconds. Once per fit: its settings as hparams,
with the selection criterion as their metric. A fit resumed from a checkpoint purges the epochs
after it, so its curves carry each epoch once.
"""

from __future__ import annotations

import numbers
from pathlib import Path


def _scalars(prefix: str, values: dict) -> dict[str, float]:
    """Every number of a (nested) dict, tagged ``prefix/key/subkey``."""
    out = {}
    for key, value in values.items():
        tag = f"{prefix}/{key}"
        if isinstance(value, dict):
            out.update(_scalars(tag, value))
        elif isinstance(value, numbers.Number) and not isinstance(value, bool) and value == value:  # not NaN
            out[tag] = float(value)
    return out


class Board:
    """The event files of one fit, under ``folder``."""

    def __init__(self, folder: Path, settings: dict, first_epoch: int, criterion: str):
        from torch.utils.tensorboard import SummaryWriter

        # a resumed fit drops what it logged after its checkpoint: it logs those epochs again
        self.writer = SummaryWriter(str(folder), purge_step=first_epoch + 1 if first_epoch else None)
        if not first_epoch:
            self._hparams(settings, f"val/{criterion}")

    def _hparams(self, settings: dict, metric: str) -> None:
        from torch.utils.tensorboard.summary import hparams

        values = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in settings.items()}
        for summary in hparams(values, {metric: 0.0}):
            self.writer.file_writer.add_summary(summary)

    def epoch(self, entry: dict, score: float | None, criterion: str) -> None:
        step = entry["epoch"]
        tags = {**_scalars("train", entry["train"]), **_scalars("val", entry["val"]), "lr": entry["lr"],
                "seconds/epoch": entry["timing"]["epoch_s"]}
        if score is not None:  # the criterion an epoch is kept on, under the name its hparams metric has
            tags.setdefault(f"val/{criterion}", score)
        for tag, value in tags.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()  # watched while the fit runs

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc) -> None:
        self.writer.close()
