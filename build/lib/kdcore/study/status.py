"""``kd status``: every stage of a study as it stands, read from its records, while it runs or after.

Read-only: it reads the stage records, the writer lock's note of who holds the output, the detached
driver's record and what squeue says; it never takes the lock, so it answers beside a running
``kd study``, here or on a cluster.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from kdcore.errors import KDError
from kdcore.io import read_json
from kdcore.study import scheduler
from kdcore.study.slurm import DRIVER_RECORD, LIVE, squeue_states

FINISHED, RUNNING, QUEUED, FAILED, WAITING, STALE = "finished", "running", "queued", "failed", "not started", "stale"
INTERRUPTED = "interrupted"  # started, and its run ended before it did: the next run resumes it
ORDER = (RUNNING, QUEUED, FAILED, INTERRUPTED, WAITING, STALE, FINISHED)


@dataclass
class StageState:
    key: str
    state: str
    detail: str = ""
    seconds: float | None = None  # finished: its wall time; running: how long so far


@dataclass
class StudyStatus:
    name: str
    output: Path
    stages: list[StageState]
    driver: str  # who runs it, in words
    left: str = ""  # the estimate of the time left
    counts: dict[str, int] = field(default_factory=dict)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def driver(layout) -> tuple[str, bool]:
    """Who drives the study now, in words, and whether one does: a ``kd study`` here (the holder
    of the writer lock, by its note), or a detached driver's Slurm job."""
    record = layout.submitit() / DRIVER_RECORD
    if record.exists():
        job = read_json(record)
        state = squeue_states([job["job_id"]]).get(job["job_id"]) if _has_squeue() else None
        if state in LIVE:
            return f"a detached driver, Slurm job {job['job_id']} ({state}); its log: {job['log']}", True
    note = layout.root / ".kdcore-writer"
    study = read_json(layout.study_record()) if layout.study_record().exists() else {}
    holder = read_json(note) if note.exists() and note.stat().st_size else {}
    pid = holder.get("pid")
    if pid and study.get("host", socket.gethostname()) == socket.gethostname() and _alive(pid):
        return f"{holder.get('who', 'kd study')} (pid {pid}, since {holder.get('started', '?')})", True
    if study:
        return f"nothing: the last run started {_ago(study['started'])} ago ({study.get('executor', 'inline')})", False
    return "nothing: no study has run here yet", False


def _has_squeue() -> bool:
    import shutil

    return shutil.which("squeue") is not None


def _ago(since: float) -> str:
    return duration(time.time() - since)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def stage_states(study: scheduler.Study, driven: bool) -> list[StageState]:
    """Each stage's state: finished (its time), running (here, or as Slurm job N, and for how long),
    queued (a Slurm job not yet running, or ready while a driver runs), failed (its line and its
    log), not started (and what it waits on), stale (finished by other code)."""
    states, by_key = [], {}
    for stage in study.stages:
        path = study.record_path(stage)
        record = read_json(path) if path.exists() else {}
        status, why = study.status(stage)
        state = _state(study, stage, record, status, why, driven)
        by_key[stage.key] = state
        states.append(state)
    for stage, state in zip(study.stages, states, strict=True):  # what a stage not started waits on
        if state.state == WAITING:
            pending = [d for d in stage.deps if by_key[d].state != FINISHED]
            if pending:
                state.detail = "waits on " + ", ".join(pending[:3]) + (f" and {len(pending) - 3} more" if len(pending) > 3 else "")
            elif driven:
                state.state, state.detail = QUEUED, "ready: starts when a slot frees"
    return states


def _state(study, stage, record: dict, status: str, why: str, driven: bool) -> StageState:
    now = time.time()
    if status == FINISHED:
        return StageState(stage.key, FINISHED, "", record.get("seconds"))
    if status == "running":  # its Slurm job is queued or running
        job_id, slurm_state = study.queued()[stage.key]
        since = now - record.get("submitted", now)
        if slurm_state == "PENDING":
            return StageState(stage.key, QUEUED, f"Slurm job {job_id}, pending", since)
        return StageState(stage.key, RUNNING, f"Slurm job {job_id}, {slurm_state.lower()}", since)
    if status == "stale":
        return StageState(stage.key, STALE, why, record.get("seconds"))
    if record.get("status") == "failed":
        log = record.get("log") or str(study.layout.executed(stage.key))
        return StageState(stage.key, FAILED, f"{record.get('error', 'failed')} (log: {log})")
    if record.get("status") in ("started", "submitted"):
        since = now - record.get("started", now)
        if driven:
            return StageState(stage.key, RUNNING, "here", since)
        return StageState(stage.key, INTERRUPTED, "its run stopped before it finished: kd study resumes it")
    return StageState(stage.key, WAITING, why if why != "never ran" else "")


def study_status(study: scheduler.Study) -> StudyStatus:
    text, driven = driver(study.layout)
    states = stage_states(study, driven)
    counts = {s: sum(x.state == s for x in states) for s in ORDER if any(x.state == s for x in states)}
    ran = [{"notebook": stage.notebook, "seconds": s.seconds}
           for stage, s in zip(study.stages, states, strict=True) if s.state == FINISHED and s.seconds]
    left = [stage for stage, s in zip(study.stages, states, strict=True) if s.state != FINISHED]
    record = read_json(study.layout.study_record()) if study.layout.study_record().exists() else {}
    estimate = scheduler.eta(left, ran, max(1, record.get("jobs") or study.jobs)).lstrip(", ")
    return StudyStatus(study.name, study.layout.root, states, text, estimate, counts)


def open_study(target: str | None, overrides: dict | None = None) -> list[scheduler.Study]:
    """The study (or a sweep's sub-studies) of a params file, or of an output folder a study ran in
    (by its ``study.json``), without taking anything."""
    from kdcore import kit
    from kdcore.study.config import load_config

    path = Path(target) if target else None
    if path is not None and path.is_dir():
        record = path / "study.json"
        if not record.exists():
            subs = sorted(path.glob("*/study.json"))  # a sweep's output: its sub-studies'
            if not subs:
                raise KDError(f"{path}: no study has run in this folder (no study.json): give its params file")
            return [s for sub in subs for s in open_study(str(sub.parent))]
        ran = read_json(record)
        return [scheduler.Study(ran["params"], reports=ran.get("reports", "reports"), overrides=ran.get("overrides"),
                                jobs=ran.get("jobs"), executor=ran.get("executor", "inline"))]
    params = kit.params_file(target or default_params())
    cfg = load_config(params, **(overrides or {}))
    if cfg.sweep:
        from kdcore.study.sweep import Sweep

        return Sweep(params, overrides=overrides).studies
    return [scheduler.Study(params, overrides=overrides)]


def default_params() -> str:
    """What ``kd study`` runs without a params file: ``study.yaml`` here (``kd init``), else the demo."""
    from kdcore.study.init import PARAMS

    return PARAMS if Path(PARAMS).is_file() else "demo"
