"""The grid: stage notebooks run by papermill for every teacher and seed, rendered to HTML.

Stages per seed: ``00_data`` (split, audit, the no-KD student); per teacher and seed:
``01_teacher`` -> ``02_student`` -> ``03_compress``; at the end ``04_compare``. A stage is
finished when its completion record exists with the stage's config digest; the record is written
last, after the executed notebook and its HTML report. A stage whose config changed, or every
stage with ``force``, starts over from clean outputs; an interrupted one resumes its training.

Here: the plan, the records and the scheduling of stages; running one stage is
``kdcore.study.notebooks``'s, the index page ``kdcore.reports.index``'s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import socket
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

from kdcore import kit
from kdcore.errors import KDError
from kdcore.io import (
    link_tree,
    read_json,
    remove_stray_temporaries,
    write_json,
    write_text,
    writer_lock,
)
from kdcore.layout import COMPARE, DATA, Layout, Reports, method_run
from kdcore.study import steps
from kdcore.study.config import DATA_KEYS, Config, digest, load_config, result_settings
from kdcore.study.notebooks import NOTEBOOKS, run_recorded, threads_per_kernel
from kdcore.study.slurm import LIVE, Cluster, log_file, squeue_states
from kdcore.study.slurm import settings as slurm_settings

SOURCE = Path(__file__).resolve().parents[1]  # the kdcore package: its code is part of every result


@dataclass
class Stage:
    notebook: str
    teacher: str | None = None
    seed: int | None = None
    deps: list[str] = field(default_factory=list)
    method: str | None = None  # a per-method stage: its method's label (``MethodConfig.run``)

    @property
    def step(self) -> steps.Step:
        return steps.step(self.notebook)

    @property
    def run(self) -> str | None:
        """The run folder its files go to: the teacher's, or for a method's stage ``<teacher>/<method>``."""
        return method_run(self.teacher, self.method)

    @property
    def key(self) -> str:
        if self.step.scope == "study":
            return COMPARE
        return f"{self.run or DATA}/seed_{self.seed}/{self.notebook}"

    def products(self, cfg: Config) -> tuple[str, ...]:
        return steps.products(cfg, self.teacher, self.step, self.method)

    @property
    def page(self) -> str | None:
        """The key of its report page (None: the comparison's)."""
        return None if self.step.scope == "study" else self.key

    def reads_from(self, other: Stage, made: tuple[str, ...]) -> bool:
        """Whether this stage reads what ``other`` makes (``made``), for a seed and teacher this
        stage covers."""
        covers = all(mine is None or theirs is None or mine == theirs
                     for mine, theirs in ((self.seed, other.seed), (self.teacher, other.teacher)))
        # the shared stages (no method) feed every method's; a method's feeds only the comparison
        method = self.step.scope == "study" or other.method in (None, self.method)
        return covers and method and bool(set(self.step.reads) & set(made))


def plan(cfg: Config, teachers: list[str] | None = None, compare: bool = True) -> list[Stage]:
    """Every stage in dependency order, its dependencies derived from what each step reads."""
    names = teachers or [t.name for t in cfg.teachers]
    scoped = {"seed": [None], "teacher": names}
    methods = [None] + [m.run for m in cfg.methods]
    stages = [Stage(step.notebook, teacher, seed, method=method)
              for seed in cfg.seeds for scope in ("seed", "teacher") for teacher in scoped[scope]
              for step in steps.STEPS if step.scope == scope and step.applies(cfg, teacher)
              for method in (methods if step.per_method else [None])]
    if compare:
        stages += [Stage(step.notebook) for step in steps.STEPS if step.scope == "study"]
    made = {s.key: s.products(cfg) for s in stages}
    for i, stage in enumerate(stages):
        stage.deps = [earlier.key for earlier in stages[:i] if stage.reads_from(earlier, made[earlier.key])]
    return stages


def check_study(cfg: Config, teachers: list[str] | None = None, weights: set[str] | None = None) -> None:
    """Everything about a params file that would stop a stage, checked without writing anything
    (``kd study`` before it starts, ``kd check --params``): the data where it exists (labels,
    images, every seed's split and its labelled training frames), the teachers (an unknown family
    or backbone, bad backbone arguments, weights that are missing or do not fit) and the stages the
    methods read. ``teachers``: those to check (None: all); ``weights``: those whose weights file is
    loaded to see that it fits (None: all; a teacher already trained has shown it)."""
    if Path(cfg.csv).exists():  # generated data is made (and right) later
        check_data(cfg)
    check_models(cfg, teachers, weights)


def check_data(cfg: Config) -> None:
    """What ``kd check`` finds before the data stage does: labels the CSV does not hold or that do
    not occur, a missing image (by row and id; decoding every frame is the data stage's), a split
    that cannot be made for a seed, a seed whose labelled training frames lack a class."""
    from kdcore.data import make_split, read_frame_csv
    from kdcore.data.schema import check_image_files
    from kdcore.data.splits import absent_labels, labelled_mask, missing_in_training

    table = read_frame_csv(cfg.csv, cfg.base_path, check_images=False, progress=False, labels=cfg.label_set)
    check_image_files(table)
    targets = table.targets
    if problem := absent_labels(targets, cfg.label_set, str(cfg.csv)):
        raise KDError(problem)
    for seed in cfg.seeds:
        split = make_split(table.strata, table.groups, cfg.split, seed, cfg.block_frames, cfg.gap_frames,
                           table.videos, cfg.train_size)
        labelled = labelled_mask(split, table.strata, cfg.labelled_fraction, seed)
        if problem := missing_in_training(targets, split.train[labelled[split.train]], cfg.label_set, seed):
            raise KDError(problem)


def check_models(cfg: Config, teachers: list[str] | None = None, weights: set[str] | None = None) -> None:
    """Every teacher (or those named) builds: its architecture alone on the meta device (no weights,
    no memory), or with its weights file, which must fit (for ``weights``; None: all); and every
    stage a method reads exists."""
    import torch

    from kdcore.models.weights import pretrained_kind
    from kdcore.study.work import build_student, build_teacher
    from kdcore.training.objective import stage_problem

    names = [t.name for t in cfg.teachers if (teachers is None or t.name in teachers) and not cfg.is_oracle(t.name)]
    with torch.device("meta"):
        student = build_student(cfg)
    for name in names:
        if pretrained_kind(cfg.teacher(name).pretrained) == "file" and (weights is None or name in weights):
            teacher = build_teacher(cfg, name)  # raises, naming the file, when the weights do not fit
        else:
            with torch.device("meta"):  # the architecture alone: no weights, no memory
                teacher = build_teacher(cfg, name)
        for i, m in enumerate(cfg.methods):
            if problem := stage_problem(m.name, m.student_stage, m.teacher_stage, student, teacher, f"teacher {name!r}"):
                raise KDError(f"config key 'methods[{i}]': {problem}")


def eta(left: list[Stage], ran: list[dict], jobs: int) -> str:
    """About how long the stages ``left`` take: each at the mean of the stages of its notebook that
    ran so far (of all that ran, for a notebook none of whose stages has), ``jobs`` at a time."""
    if not left or not ran:
        return ""
    by_kind: dict[str, list[float]] = {}
    for row in ran:
        by_kind.setdefault(row["notebook"], []).append(row["seconds"])
    every = [s for seconds in by_kind.values() for s in seconds]
    seconds = sum(fmean(by_kind.get(stage.notebook) or every) for stage in left) / jobs
    return f", about {seconds / 60:.0f} min left" if seconds >= 90 else f", about {seconds:.0f} s left"


def _priority(stage: Stage) -> int:
    """Teachers first: the longest stages start early, and the short ones fill the cores at the end."""
    return 0 if stage.notebook == steps.TEACHER_STEP else 1


DIGEST_FORMULA = 4  # stage_digest's formula: a record of another formula is judged stale, never "changed"


def stage_digest(cfg: Config, stage: Stage) -> str:
    """What a stage's results depend on: the settings that shape results but those its step
    ignores, its data (by path: no fingerprint is taken before a stage runs), its teacher's
    settings and its seed (every teacher's and seed for the comparison)."""
    settings = cfg.to_dict()
    teachers = [t for t in settings["teachers"] if stage.step.scope == "study" or t["name"] == stage.teacher]
    seeds = settings["seeds"] if stage.step.scope == "study" else stage.seed
    shared = {k: v for k, v in result_settings(settings).items() if k not in stage.step.ignores}
    own = {"method": dataclasses.asdict(cfg.method(stage.method))} if stage.method else {}  # its entry alone
    return digest({"shared": shared, "data": {k: settings[k] for k in DATA_KEYS},
                   "teacher": teachers, "seed": seeds, "stage": stage.notebook, **own})


def code_digest(source: Path, notebook: Path) -> str:
    """kdcore's version, every source file of the package, and the stage's notebook."""
    from kdcore import __version__

    h = hashlib.sha256(__version__.encode())
    kit_files = [source / name for name in kit.FOLDERS]  # an installed kit's benchmarks compute no result
    code = [p for p in sorted(source.rglob("*.py")) if not any(p.is_relative_to(f) for f in kit_files)]
    for path in code + [notebook]:
        h.update(path.relative_to(path.parents[1]).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def report_folder(root: str | Path, params: Path, output: str) -> str:
    """A study's report folder under ``root``, by what makes it a study: its output. The folder that
    already holds this output's pages (``Reports.claim``); else the params file's name when the
    output is the file's own, else the name and the output's folder (``smoke-other``), numbered on
    where another output holds that name. Two studies of one params file with two outputs never
    share a folder; the same study run again rewrites its own."""
    root, output = Path(root), str(Path(output).resolve())
    for claim in sorted(root.glob(f"{params.stem}*/{Reports.CLAIM}")):
        if read_json(claim).get("output") == output:
            return claim.parent.name
    try:
        own = str(Path(load_config(params).output).resolve())
    except KDError:  # a file that is only complete with its overrides has no output of its own
        own = None
    base = params.stem if output == own else f"{params.stem}-{Path(output).name}"
    name, n = base, 1
    while Reports(root, name).claim().exists():  # held by another output: ours was looked for above
        n += 1
        name = f"{base}-{n}"
    return name


class Study:
    def __init__(self, params: str | Path, reports: str | Path = "reports", force: bool = False,
                 jobs: int | None = None, executor: str = "inline", kernels: str = "forked", teachers: list[str] | None = None,
                 show_code: bool = False, slurm: dict | None = None, overrides: dict | None = None,
                 compare: bool = True, keep_results: bool = False, name: str | None = None,
                 donors: list[Study] | None = None, wait: bool = True, who: str = "kd study"):
        """``jobs``: stages at once (default: one per core); ``kernels``: ``forked`` from a process
        with the stages' modules imported, or ``spawned`` afresh (``kdcore.study.kernels``);
        ``name``: its reports' folder (default: the params file's name); ``donors``: studies whose
        finished stages this one takes instead of running them again, where the stage's digest and
        code are the same (a sweep's earlier sub-studies)."""
        if kernels not in ("forked", "spawned"):
            raise KDError(f"kernels must be forked or spawned (got {kernels!r})")
        if executor not in ("inline", "slurm"):
            raise KDError(f"--executor must be inline or slurm (got {executor!r})")
        self.params = Path(params).resolve()
        self.cfg = load_config(self.params, **(overrides or {}))
        self.overrides = overrides or {}
        self.layout = Layout(self.cfg.output)
        self.name = name or report_folder(reports, self.params, self.cfg.output)
        self.donors = donors or []
        self.wait, self.who = wait, who  # the output's writer lock: wait for another writer, or refuse
        self.reports_root = Path(reports)
        self.pages = Reports(reports, self.name)
        self.reports = self.pages.folder
        self.force, self.executor, self.kernels, self.show_code = force, executor, kernels, show_code
        self.keep_results = keep_results
        self.source, self._code = SOURCE, {}
        self.stages = plan(self.cfg, teachers, compare)
        # on a cluster every stage whose inputs are there is submitted at once: Slurm queues them
        self.cluster = Cluster(slurm_settings(self.cfg.slurm, **(slurm or {})), self.layout.submitit()) \
            if executor == "slurm" else None
        self.jobs = max(1, jobs or (len(self.stages) if self.cluster else os.cpu_count() or 1))
        # concurrent stages share the cores rather than each taking all of them
        self.threads = max(1, (os.cpu_count() or 1) // self.jobs) if self.jobs > 1 and not self.cluster else 0
        self._queued: dict[str, tuple[str, str]] | None = None
        self._say = print
        for name in teachers or []:
            self.cfg.teacher(name)  # an unknown teacher is an error before anything runs

    # --- records ---

    def report(self, stage: Stage) -> Path:
        """The stage's HTML page."""
        return self.pages.page(stage.page)

    def record_path(self, stage: Stage) -> Path:
        return self.layout.stage_record(stage.key)

    def code_digest_of(self, stage: Stage) -> str:
        """The digest of the code a stage runs: kdcore's source and the stage's notebook."""
        key = (self.source, stage.notebook)
        if key not in self._code:  # hashed once per study run, not at every status check
            self._code[key] = code_digest(self.source, NOTEBOOKS / f"{stage.notebook}.ipynb")
        return self._code[key]

    def status(self, stage: Stage) -> tuple[str, str]:
        """(finished | to run | running | stale, why): stale means finished, but by other code;
        running, that its Slurm job is queued or running (submitted by an earlier ``kd study``)."""
        path = self.record_path(stage)
        if not path.exists():
            return "to run", "never ran"
        record = read_json(path)
        if record.get("status") == "submitted" and stage.key in self.queued():
            job_id, state = self.queued()[stage.key]
            return "running", f"Slurm job {job_id} is {state}: waits on it, submits nothing"
        if record.get("status") == "failed":
            job = f" (Slurm job {record['job_id']}, {record['state']})" if "state" in record else ""
            return "to run", f"failed{job}: runs again, resuming"
        if record.get("status") != "finished":
            return "to run", "interrupted: resumes where it stopped"
        if record.get("digest_formula") != DIGEST_FORMULA:  # its digest cannot be compared: keep, don't clean
            return "stale", "recorded by an older kdcore, whose settings digest is not comparable"
        if record.get("digest") != stage_digest(self.cfg, stage):
            return "to run", "a setting it depends on changed"
        if record.get("code") != self.code_digest_of(stage):
            return "stale", "kdcore or its notebook changed since it ran"
        return "finished", "kept from an earlier code version" if record.get("kept_from_code") else ""

    def finished(self, stage: Stage) -> bool:
        return self.status(stage)[0] == "finished"

    def queued(self) -> dict[str, tuple[str, str]]:
        """The stages whose recorded Slurm job is still queued or running: key -> (job ID, state).
        Read from squeue once per run (none where there is no Slurm)."""
        if self._queued is None:
            recorded = {}
            for stage in self.stages:
                path = self.record_path(stage)
                if path.exists() and (record := read_json(path)).get("status") == "submitted":
                    recorded[stage.key] = record["job_id"]
            states = squeue_states(sorted(set(recorded.values()))) if recorded and shutil.which("squeue") else {}
            self._queued = {key: (job, states[job]) for key, job in recorded.items() if states.get(job) in LIVE}
        return self._queued

    def plan_table(self) -> list[dict]:
        """Each stage, what a run would do with it, and why."""
        rows = []
        for stage in self.stages:
            status, reason = self.status(stage)
            donor = self.donor(stage, planned=True) if status == "to run" and not self.force else None
            if donor:
                status, reason = "to share", f"from {donor.name}, which runs it with the same settings and code"
            rows.append({"stage": stage.key, "status": "to run (forced)" if self.force else status, "reason": reason})
        return rows

    def donor(self, stage: Stage, planned: bool = False) -> Study | None:
        """A donor study that finished this very stage (or, ``planned``, will run it): same key,
        settings digest and code."""
        for donor in self.donors:
            theirs = next((s for s in donor.stages if s.key == stage.key), None)
            if theirs and (planned or donor.finished(theirs)) and donor.code_digest_of(theirs) == self.code_digest_of(stage) \
                    and stage_digest(donor.cfg, theirs) == stage_digest(self.cfg, stage):
                return donor
        return None

    def _share(self, stage: Stage, donor: Study) -> None:
        """Take a donor's finished stage: its products, executed notebook and page, hard-linked."""
        self._start(stage, clean=True)
        theirs = [(donor.layout.product_files(p, stage.run, stage.seed), p) for p in stage.products(self.cfg)]
        for files, _ in theirs:
            for source in files:
                link_tree(source, self.layout.root / source.relative_to(donor.layout.root))
        link_tree(donor.layout.executed(stage.key), self.layout.executed(stage.key))
        link_tree(donor.report(stage), self.report(stage))
        write_json(self.record_path(stage), {**read_json(donor.record_path(stage)), **self._digest(stage),
                                             "shared_from": str(donor.record_path(stage))})

    def _digest(self, stage: Stage) -> dict:
        return {"digest": stage_digest(self.cfg, stage), "digest_formula": DIGEST_FORMULA}

    def _keep(self, stages: list[Stage]) -> None:
        """Accept results of other code: recorded in the stage's record."""
        for stage in stages:
            record = read_json(self.record_path(stage))
            code = self.code_digest_of(stage)
            write_json(self.record_path(stage), {**record, "code": code, "kept_from_code": record.get("code"),
                                                 "kept": time.time(), **self._digest(stage)})

    def _start(self, stage: Stage, clean: bool = False) -> None:
        """Begin a stage: clean outputs if it ran before under another config (or force, or
        ``clean``), and the temporary files a killed run of it left."""
        path = self.record_path(stage)
        previous = read_json(path) if path.exists() else None
        if clean or self.force or (previous and previous.get("digest") != stage_digest(self.cfg, stage)):
            for product in stage.products(self.cfg):
                for p in self.layout.product_files(product, stage.run, stage.seed):
                    shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        for folder in self.layout.step_folders(stage.step.scope, stage.run, stage.seed):
            remove_stray_temporaries(folder)
        write_json(path, {"status": "started", **self._digest(stage), "code": self.code_digest_of(stage), "started": time.time()})

    # --- running ---

    def run(self, progress=print) -> list[dict]:
        """Run what is not finished, in dependency order; return one line of status per stage.

        One writer per output: the run holds the output's writer lock (another ``kd study`` on it
        waits, or with ``wait=False`` refuses); the stage kernels it starts write under it.
        Stages finished by other code stop the run before anything starts, unless ``force`` (run
        them again) or ``keep_results`` (accept them). Bad params are refused before the lock is
        taken: they leave the output exactly as it was."""
        self.check()
        return self.run_checked(progress)

    def check(self) -> None:
        """The preflight of what is left to run (nothing when every stage is finished)."""
        if todo := self.unfinished():
            self.preflight(todo)

    def run_checked(self, progress=print) -> list[dict]:
        """``run`` after ``check`` (a sweep checks every sub-study before it starts the first)."""
        with writer_lock(self.layout.root, self.who, self.wait):
            write_json(self.layout.study_record(), {
                "params": str(self.params), "overrides": self.overrides, "reports": str(self.reports_root.resolve()),
                "jobs": self.jobs, "executor": self.executor, "pid": os.getpid(), "host": socket.gethostname(),
                "started": time.time()})
            return self._run(progress)

    def unfinished(self) -> list[Stage]:
        return [s for s in self.stages if self.force or not self.finished(s)]

    def _run(self, progress) -> list[dict]:
        self._queued, self._say = None, progress
        self._check_queued()
        stale = [s for s in self.stages if self.status(s)[0] == "stale"]
        if stale and not self.force:
            if not self.keep_results:
                names = ", ".join(s.key for s in stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
                raise KDError(f"{len(stale)} finished stage(s) were produced by other code ({names}): "
                              "--force runs them again, --keep-results accepts them")
            self._keep(stale)
        todo = self.unfinished()
        done = {s.key for s in self.stages} - {s.key for s in todo}
        planned = {s.key for s in self.stages}
        outside = [(s.key, d) for s in todo for d in s.deps if d not in planned]
        if outside:  # it would wait forever: say so instead
            raise KDError(f"stage {outside[0][0]} reads what stage {outside[0][1]} makes, which is not part of this run")
        if todo:
            from kdcore.study.work import ensure_data

            ensure_data(self.cfg)  # generated once here, not raced by concurrent stages
        progress(f"{len(self.stages)} stages: {len(done)} finished, {len(todo)} to run")
        for row in self.plan_table():
            if row["status"] != "finished":
                progress(f"  {row['status']:<16} {row['stage']:<40} {row['reason']}")
        return self._schedule(todo, done, progress)

    def _check_queued(self) -> None:
        """Stages whose Slurm job is still queued or running are waited on, on a cluster, and never
        run a second time: not here, not with other settings, not forced."""
        for key, (job_id, state) in self.queued().items():
            stage = next(s for s in self.stages if s.key == key)
            why = ("it would run here as well" if self.cluster is None else "--force would run it twice" if self.force
                   else "with other settings than these" if read_json(self.record_path(stage)).get("digest")
                   != stage_digest(self.cfg, stage) else "")
            if why:
                raise KDError(f"stage {key} runs as Slurm job {job_id} ({state}), {why}: wait for it "
                              f"(kd study --executor slurm waits on it) or scancel {job_id}")

    def _schedule(self, todo: list[Stage], done: set[str], progress) -> list[dict]:
        """Start every stage whose dependencies are done, ``jobs`` at a time (or share it from a
        donor, or wait on its queued job); a stage that fails stops only the stages that read
        what it makes, and the run ends with its error once the others are done."""
        ran, done_before, total, failed = [], len(done), len(todo), {}
        with threads_per_kernel(self.threads if self.executor == "inline" else 0), \
                ThreadPoolExecutor(self.jobs) as pool:
            running = {}
            while todo or running:
                for stage in [s for s in todo if any(d in failed for d in s.deps)]:
                    todo.remove(stage)
                    failed[stage.key] = None  # not run: what it reads is missing
                    progress(f"not run {stage.key}: it reads what a failed stage makes")
                ready = sorted((s for s in todo if all(d in done for d in s.deps)), key=_priority)
                for stage in [s for s in ready if not self.force and self.donor(s)]:
                    donor = self.donor(stage)
                    self._share(stage, donor)
                    todo.remove(stage)
                    done.add(stage.key)
                    progress(f"shared {stage.key} from {donor.name}")
                ready = [s for s in ready if s.key not in done][: self.jobs - len(running)]
                for stage in ready:
                    todo.remove(stage)
                    if stage.key in self.queued():
                        running[pool.submit(self._attach, stage)] = stage
                        continue
                    self._start(stage)
                    running[pool.submit(self._execute, stage)] = stage
                if not running:
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    stage = running.pop(future)
                    try:
                        timing = future.result()
                    except KDError as e:
                        failed[stage.key] = e
                        self._fail(stage, e)
                        progress(f"failed {e}")
                        continue
                    done.add(stage.key)
                    ran.append({"stage": stage.key, "notebook": stage.notebook, **timing})
                    left = eta([*todo, *running.values()], ran, self.jobs)
                    progress(f"finished {stage.key} in {timing['seconds']:.0f} s ({timing['work_s']:.0f} s of work) "
                             f"[{len(done) - done_before}/{total} done{left}]")
        errors = [e for e in failed.values() if e is not None]
        if errors:
            more = [f"{len(errors) - 1} more stage(s) failed"] if len(errors) > 1 else []
            more += [f"{len(failed) - len(errors)} that read what failed did not run"] if len(failed) > len(errors) else []
            raise KDError(f"{errors[0]}" + (f" ({'; '.join(more)}: each is listed above)" if more else ""))
        return ran

    def preflight(self, todo: list[Stage]) -> None:
        """What would fail a stage an hour in, checked before anything runs or is cleaned: output
        folders that cannot be written, what a cluster cannot give, and ``check_study``'s data and
        models (first: a refused params file leaves no folder behind)."""
        check_study(self.cfg, sorted({s.teacher for s in todo if s.teacher}),
                    {s.teacher for s in todo if s.notebook == steps.TEACHER_STEP})
        for key, folder in (("output", self.layout.root), ("reports", self.reports)):
            try:
                write_text(self.layout.write_check(folder), "")
                self.layout.write_check(folder).unlink()
            except OSError as e:
                raise KDError(f"{key} folder {folder} cannot be written: {e.strerror}") from None
        if self.cluster:
            self.cluster.check({s.step.trains for s in todo})

    def _execute(self, stage: Stage) -> dict:
        """Run a stage, here or as a Slurm job; its record says its seconds, and of them those of
        its work (the notebook's work cells: ``notebooks.work_seconds``)."""
        spec = self.job_spec(stage)
        if self.cluster is None:
            return run_recorded(spec, forked=self.kernels == "forked")  # its errors name the stage
        try:
            job_id = self.cluster.submit(spec, stage.step.trains)
        except KDError as e:
            raise KDError(f"stage {stage.key}: {e}") from None
        path = self.record_path(stage)
        record = read_json(path)
        if record.get("status") == "started":  # the job has not finished it meanwhile
            write_json(path, {**record, "status": "submitted", "job_id": job_id,
                              "log": str(log_file(self.cluster.folder, job_id)), "submitted": time.time()})
        self._say(f"submitted {stage.key} as Slurm job {job_id}")
        return self.cluster.wait(stage.key, job_id)

    def _attach(self, stage: Stage) -> dict:
        """Wait on the job an earlier run submitted for a stage."""
        job_id, state = self.queued()[stage.key]
        self._say(f"waiting on {stage.key}: Slurm job {job_id} is {state} (submitted by an earlier run)")
        return self.cluster.wait(stage.key, job_id)

    def _fail(self, stage: Stage, error: KDError) -> None:
        """Record that a stage failed, and how (its Slurm job's ID, state and log where it had one)."""
        path = self.record_path(stage)
        record = read_json(path) if path.exists() else {}
        write_json(path, {**record, "status": "failed", "error": str(error), **getattr(error, "job", {}),
                          "failed": time.time()})

    def job_spec(self, stage: Stage) -> dict:
        executed = self.layout.executed(stage.key)
        return {"notebook": str(NOTEBOOKS / f"{stage.notebook}.ipynb"), "executed": str(executed),
                "report": str(self.report(stage)), "key": stage.key, "show_code": self.show_code,
                "record": str(self.record_path(stage)),
                "identity": {**self._digest(stage), "code": self.code_digest_of(stage)},
                "parameters": {"params": str(self.params), "output": self.cfg.output,
                               "teacher": stage.teacher or "", "seed": stage.seed if stage.seed is not None else -1,
                               "overrides": self.overrides, "threads": self.threads,
                               **({"method": stage.method} if stage.method else {})}}
