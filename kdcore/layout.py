"""Where a study's files live: every output folder and file name, in one place.

Plain paths only (no torch), so that ``kd study`` and ``kd`` read them without loading a model
library. A *run* is a teacher's name, or ``NO_KD`` for the seed's student without a teacher; a
*role* is what was fitted in a run (``teacher``, ``student``, ``student_pruned``, a crossfit fold).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NO_KD = "no_kd"  # the run folder of the RGB-only student trained without a teacher
COMPARE = "compare"  # the folder of the comparison's tables and figures
VARIANT_FILES = {"fp32": "student", "pruned": "student_pruned"}  # a compressed variant's file stem


@dataclass(frozen=True)
class FitPaths:
    best: Path  # the best model's weights, with the epoch and score they came from
    last: Path  # everything needed to resume
    log: Path  # the per-epoch log (JSON)


class Layout:
    """The study's output layout under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # --- folders ---

    def models(self, run: str, seed: int) -> Path:
        return self.root / "models" / run / f"run_seed_{seed}"

    def metrics(self, run: str, seed: int) -> Path:
        return self.root / "metrics" / run / f"run_seed_{seed}"

    def graphs(self, run: str, seed: int) -> Path:
        return self.root / "graphs" / run / f"run_seed_{seed}"

    def data(self, seed: int) -> Path:
        return self.root / "data" / f"seed_{seed}"

    def cache(self) -> Path:
        return self.root / "cache"

    def compare_tables(self) -> Path:
        return self.root / "metrics" / COMPARE

    def compare_graphs(self) -> Path:
        return self.root / "graphs" / COMPARE

    # --- one seed's data ---

    def split(self, seed: int) -> Path:
        return self.data(seed) / "split.json"

    def normalization(self, seed: int) -> Path:
        return self.data(seed) / "normalization.json"

    def audit(self, seed: int) -> Path:
        return self.data(seed) / "audit.json"

    # --- one run's fits and measurements ---

    def fit_paths(self, run: str, seed: int, role: str) -> FitPaths:
        models = self.models(run, seed)
        return FitPaths(models / f"{role}_best.pth", models / f"{role}_last.pth",
                        self.metrics(run, seed) / f"{role}_train_log.json")

    def teacher_outputs(self, teacher: str, seed: int) -> Path:
        return self.models(teacher, seed) / "teacher_outputs.pt"

    def evaluation(self, run: str, seed: int, role: str) -> Path:
        return self.metrics(run, seed) / f"{role}_evaluation.json"

    def predictions(self, run: str, seed: int, role: str) -> Path:
        return self.metrics(run, seed) / f"{role}_test_predictions.csv"

    def final_evaluation(self, teacher: str, seed: int) -> Path:
        return self.metrics(teacher, seed) / "final_evaluation.json"

    def compression(self, teacher: str, seed: int) -> Path:
        return self.metrics(teacher, seed) / "compression.json"

    def aggregated(self, teacher: str) -> Path:
        return self.root / "metrics" / teacher / "aggregated_results.json"

    # --- the compressed student's files (variant: fp32 or pruned) ---

    def onnx(self, teacher: str, seed: int, variant: str) -> Path:
        return self.models(teacher, seed) / f"{VARIANT_FILES[variant]}.onnx"

    def quantized(self, teacher: str, seed: int, variant: str) -> Path:
        return self.models(teacher, seed) / f"{VARIANT_FILES[variant]}_quantized.onnx"

    def safetensors(self, teacher: str, seed: int, variant: str) -> Path:
        return self.models(teacher, seed) / f"{VARIANT_FILES[variant]}.safetensors"

    # --- what a stage writes (removed before it starts over) ---

    def stage_outputs(self, notebook: str, teacher: str | None, seed: int | None) -> list[Path]:
        if notebook == "00_data":
            return [self.data(seed), self.models(NO_KD, seed), self.metrics(NO_KD, seed), self.graphs("data", seed)]
        if notebook == "04_compare":
            return [self.compare_graphs(), self.compare_tables()]
        final = ["final_evaluation.json"]  # rewritten by the last of the teacher's stages that runs
        patterns = {"01_teacher": ["teacher_*"],  # with the crossfit folds' teacher_fold<k>_*
                    "02_student": ["student_best.pth", "student_last.pth", "student_train_log.json",
                                   "student_evaluation.json", "student_test_predictions.csv", *final],
                    "03_compress": ["student_pruned*", "*.onnx", "*.safetensors", "compression.json", *final]}
        folders = (self.models(teacher, seed), self.metrics(teacher, seed))
        return [p for folder in folders for pattern in patterns[notebook] for p in folder.glob(pattern)]

    # --- the study's bookkeeping ---

    def stage_record(self, key: str) -> Path:
        return self.root / "stages" / f"{key}.json"

    def executed(self, key: str) -> Path:
        return self.root / "executed" / f"{key}.ipynb"

    def submitit(self) -> Path:
        return self.root / "submitit"


def synth_recipe(csv: str | Path) -> Path:
    """Beside generated data: the settings it was generated with."""
    return Path(csv).parent / "synth.json"
