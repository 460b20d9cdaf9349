"""Every random stream of a run, derived in one place from the run's seed and what it is for.

A stream's derivation is part of every number that depends on it: these are the ones the study's
recorded results were made with (the golden smoke record pins them). Changing one moves results;
adding a purpose leaves the others as they were.
"""

from __future__ import annotations

import numpy as np

# numpy streams: purpose -> the seed entropy numpy's generator is built from
NUMPY = {
    "split": lambda seed: seed,  # which blocks go to train, val and test
    "label_budget": lambda seed: [seed, 1],  # which training blocks keep their labels
    "crossfit_folds": lambda seed: [seed, 2],  # which labelled blocks go to which crossfit fold
}
# torch streams: purpose -> (seed, index) -> torch's global or a generator's seed
TORCH = {
    "init": lambda seed, index: seed,  # a model's initial weights and the fit's global RNGs
    "crossfit_init": lambda seed, fold: seed * 1000 + fold + 1,  # the fold teachers' initial weights
    "shuffle": lambda seed, epoch: seed * 100_003 + epoch,  # the order of an epoch's training frames
}


def numpy_rng(seed: int, purpose: str) -> np.random.Generator:
    """numpy's generator for ``purpose`` (a key of ``NUMPY``) in the run of ``seed``."""
    return np.random.default_rng(NUMPY[purpose](seed))


def torch_seed(seed: int, purpose: str, index: int = 0) -> int:
    """The seed torch takes for ``purpose`` (a key of ``TORCH``) in the run of ``seed``; ``index``
    tells apart the streams of one purpose (the fold, the epoch)."""
    return TORCH[purpose](seed, index)
