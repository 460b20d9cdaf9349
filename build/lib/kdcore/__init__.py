"""kdcore: privileged knowledge distillation from RGB+IR teachers into an RGB-only student.

Packages by job, each importing only those below it (``docs/architecture.md``; checked by
import-linter, ``make test``):

    cli              the ``kd`` command
    reports          what a page shows: stage sections, figures, index pages
    study            settings, steps and their work, the stages of a study, sweeps
    compression      pruning, ONNX, int8, prediction with a deployable student
    training         the fit loop, KD losses, selection criteria
    models           teachers, student, weights, file format, cost  |  evaluation: metrics, statistics, tables
    data             CSV schema, imports, synthetic data, splits, cache, Dataset
    errors, io, layout, progress, provenance, seeds: the base every layer may use
"""

from kdcore.errors import KDError

__version__ = "0.1.0"
__all__ = ["KDError", "__version__"]
