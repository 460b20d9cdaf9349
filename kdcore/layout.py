"""Where a study's files live: every output folder and file name, in one place.

Plain paths only (no torch), so that ``kd study`` and ``kd`` read them without loading a model
library. A *run* is a teacher's name, ``NO_KD`` for the seed's student without a teacher (its
figures go under ``DATA``), or ``<teacher>/<method>`` for a student of the methods axis; a *role* is what was fitted in a run (``teacher``, ``student``,
``student_pruned``, a crossfit fold); a *product* is what a step makes (``kdcore.study.steps``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NO_KD = "no_kd"  # the run folder of the RGB-only student trained without a teacher
DATA = "data"  # the run folder of a seed's data figures (and its stage records)
COMPARE = "compare"  # the folder of the comparison's tables and figures
# a compressed variant's file stem; a variant not listed is "student_<variant>"
VARIANT_STEMS = {"fp32": "student", "pruned": "student_pruned", "int8": "student_quantized",
                 "pruned_int8": "student_pruned_quantized"}
PAPER_TABLES = ("answer", "models", "differences", "baseline", "compressed_students")  # the comparison's tables
PAPER_TABLE_FORMATS = (".tex", ".md", ".csv")


@dataclass(frozen=True)
class FitPaths:
    best: Path  # the best model's weights, with the epoch and score they came from
    last: Path  # everything needed to resume
    log: Path  # the per-epoch log (JSON)
    board: Path | None = None  # TensorBoard's event files of the fit (None: none written)


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

    def sweep_figure(self, name: str) -> Path:
        """A figure of a sweep's page, under the sweep's own output folder."""
        return self.root / "graphs" / "sweep" / f"{name}.png"

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
                        self.metrics(run, seed) / f"{role}_train_log.json", self.board_run(run, seed, role))

    def teacher_outputs_file(self, teacher: str, seed: int) -> Path:
        return self.models(teacher, seed) / "teacher_outputs.pt"

    def evaluation(self, run: str, seed: int, role: str) -> Path:
        return self.metrics(run, seed) / f"{role}_evaluation.json"

    def predictions(self, run: str, seed: int, role: str) -> Path:
        return self.metrics(run, seed) / f"{role}_test_predictions.csv"

    def final_evaluation(self, teacher: str, seed: int) -> Path:
        return self.metrics(teacher, seed) / "final_evaluation.json"

    def compression(self, teacher: str, seed: int) -> Path:
        return self.metrics(teacher, seed) / "compression.json"

    def figure(self, run: str | None, seed: int | None, name: str) -> Path:
        """A figure as PNG: a run's (``DATA`` for a seed's data), or the comparison's (no run)."""
        folder = self.compare_graphs() if run is None else self.graphs(run, seed)
        return folder / f"{name}.png"

    # --- the compressed student's files ---

    def variant_file(self, teacher: str, seed: int, variant: str, suffix: str) -> Path:
        """A variant's file (``.onnx``, ``.safetensors``): ``student_quantized.onnx``, say."""
        return self.models(teacher, seed) / f"{VARIANT_STEMS.get(variant, f'student_{variant}')}{suffix}"

    # --- the comparison ---

    def aggregated(self, teacher: str) -> Path:
        return self.root / "metrics" / teacher / "aggregated_results.json"

    def paper_table(self, name: str, suffix: str) -> Path:
        return self.compare_tables() / f"{name}{suffix}"

    # --- what the steps make ---

    def product_record(self, product: str, teacher: str | None, seed: int) -> Path:
        """A product with no files of its own naming: its step's JSON record in the run's metrics
        folder (the teacher's, or for a seed's step, the seed's no-KD run's)."""
        return self.metrics(teacher or NO_KD, seed) / f"{product}.json"

    def evidence(self, product: str, teacher: str | None, seed: int | None) -> list[Path]:
        """The files whose presence shows that ``product`` was made."""
        return {
            "split": lambda: [self.split(seed)],
            "no_kd_student": lambda: [self.evaluation(NO_KD, seed, "student")],
            "teacher": lambda: [self.evaluation(teacher, seed, "teacher"), self.teacher_outputs_file(teacher, seed)],
            "student": lambda: [self.evaluation(teacher, seed, "student")],
            "method_student": lambda: [self.evaluation(teacher, seed, "student")],  # teacher: the method's run
            "compressed_students": lambda: [self.compression(teacher, seed)],
            "final_evaluation": lambda: [self.final_evaluation(teacher, seed)],
        }.get(product, lambda: [self.product_record(product, teacher, seed)])()

    def missing(self, products, teacher: str | None, seed: int | None) -> list[tuple[str, Path]]:
        return [(p, path) for p in products for path in self.evidence(p, teacher, seed) if not path.exists()]

    def product_files(self, product: str, teacher: str | None, seed: int | None) -> list[Path]:
        """Every file and folder of ``product`` that exists (removed before its step starts over)."""
        student = self.fit_paths(teacher, seed, "student") if teacher else None
        run = (self.models(teacher, seed), self.metrics(teacher, seed)) if teacher else ()
        board = self.board() / (teacher or NO_KD) / f"seed_{seed}"  # the run's fits' event files
        found = {
            "split": lambda: [self.data(seed), self.graphs(DATA, seed)],
            "no_kd_student": lambda: [self.models(NO_KD, seed), self.metrics(NO_KD, seed), board],
            "teacher": lambda: [p for folder in (*run, board) for p in folder.glob("teacher*")]  # crossfit folds too
            + list(self.graphs(teacher, seed).glob("*teacher*")),
            "student": lambda: [student.best, student.last, student.log, self.evaluation(teacher, seed, "student"),
                                self.predictions(teacher, seed, "student"), student.board],
            "method_student": lambda: [*run, self.graphs(teacher, seed), board],  # teacher: the method's run
            "final_evaluation": lambda: [self.final_evaluation(teacher, seed)],
            "compressed_students": lambda: [self.compression(teacher, seed), *run[0].glob("student_pruned*"),
                                            *run[0].glob("*.onnx"), *run[0].glob("*.safetensors"),
                                            *board.glob("student_pruned")],
            "comparison": lambda: [self.compare_graphs(), self.compare_tables(),
                                   *self.root.glob("metrics/*/aggregated_results.json")],
        }.get(product, lambda: [self.product_record(product, teacher, seed)])()
        return [p for p in found if p.exists()]

    def step_folders(self, scope: str, teacher: str | None, seed: int | None) -> list[Path]:
        """Where a step of ``scope`` writes (searched for temporary files a killed run left)."""
        if scope == "study":
            return [self.compare_graphs(), self.compare_tables()]
        run = teacher if scope == "teacher" else NO_KD
        graphs = self.graphs(teacher if scope == "teacher" else DATA, seed)
        return [self.models(run, seed), self.metrics(run, seed), graphs] + ([self.data(seed)] if scope == "seed" else [])

    # --- the study's bookkeeping ---

    def stage_record(self, key: str) -> Path:
        return self.root / "stages" / f"{key}.json"

    def board(self) -> Path:
        """TensorBoard's event files: one folder per fit, ``<run>/seed_<s>/<role>``."""
        return self.root / "board"

    def board_run(self, run: str, seed: int, role: str) -> Path:
        return self.board() / run / f"seed_{seed}" / role

    def study_record(self) -> Path:
        """Which study last ran here, how and by whom (``kd status OUTPUT`` reads it)."""
        return self.root / "study.json"

    def executed(self, key: str) -> Path:
        return self.root / "executed" / f"{key}.ipynb"

    def submitit(self) -> Path:
        return self.root / "submitit"

    def write_check(self, folder: Path) -> Path:
        """The file written and removed to learn whether ``folder`` can be written."""
        return Path(folder) / ".kdcore-write-check"


class Reports:
    """Where a study's HTML reports go: one folder per study under the reports root."""

    INDEX = "index.html"
    CLAIM = "study.json"  # whose pages a folder holds: the params file, the overrides, the output

    def __init__(self, root: str | Path, study: str):
        self.root, self.folder = Path(root), Path(root) / study

    def page(self, stage_key: str | None) -> Path:
        """A stage's page (``stage_key`` None: the comparison's)."""
        return self.folder / ("compare.html" if stage_key is None else f"{stage_key}.html")

    def index(self) -> Path:
        return self.folder / self.INDEX

    def studies(self) -> Path:
        """The index of every study under the root."""
        return self.root / self.INDEX

    def claim(self) -> Path:
        """The record of which study's pages the folder holds."""
        return self.folder / self.CLAIM


def method_run(teacher: str | None, method: str | None) -> str | None:
    """The run of a teacher's student distilled by one method of the methods axis, its folders
    inside the teacher's (``models/<teacher>/<method>/run_seed_<s>/``); without a method, the
    teacher's own run."""
    return f"{teacher}/{method}" if method else teacher


def deployable_names() -> list[str]:
    """The names of a run's student files that ``kd predict`` reads (the last one a pattern)."""
    return [f"{VARIANT_STEMS[v]}.safetensors" for v in ("fp32", "pruned")] + \
        [Layout(".").fit_paths(NO_KD, 0, "student").best.name, f"{VARIANT_STEMS['fp32']}*.onnx"]


def synth_csv(folder: str | Path) -> Path:
    """The frame CSV ``kd synth`` writes beside the data it generates."""
    return Path(folder) / "frame_labels.csv"


def synth_recipe(csv: str | Path) -> Path:
    """Beside generated data: the settings it was generated with."""
    return Path(csv).parent / "synth.json"


def cache_file(folder: str | Path, modality: str, size: int, key: str) -> Path:
    """Decoded frames of one modality at one size; ``key`` names the source images."""
    return Path(folder) / f"{modality}_{size}px_{key}.npy"
