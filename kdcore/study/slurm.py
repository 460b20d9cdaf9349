"""Stages as Slurm jobs (``kd study --executor slurm``), submitted through submitit.

Each stage is one job. The driver (``kd study``) records the job's ID with the stage the moment it
submits it, and the job writes the stage's completion record itself, so the driver may go away (a
closed terminal, a killed process, ``--detach``): run again, it waits on the recorded jobs that are
still queued or running and submits only what has not started.

Job states come from ``squeue``: many clusters keep no accounting, and a driver that polls every
few seconds sees each of its jobs end long before squeue forgets it (minutes: ``MinJobAge``).

A job that Slurm stops (a preemption or ``scontrol requeue``, the time limit, ``scancel``) leaves no
result: its kernel dies with it, and it waits for Slurm to end it, so that its fate is Slurm's to
tell. Requeued, it runs its stage again, and the fit resumes from its last checkpoint; ended,
its stage fails with the state Slurm gives (CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL). At the
time limit's warning (submitit's USR2, 90 s before) submitit requeues it itself.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from kdcore.errors import KDError
from kdcore.io import WRITER_ENV, job_token, read_json, write_json
from kdcore.study.config import SlurmConfig
from kdcore.study.notebooks import run_recorded, threads_per_kernel

# states of a job Slurm may still run (squeue's long names); any other is an end
LIVE = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "REQUEUED",
                  "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"})
# a job that ended by itself may leave its result a little later on a shared file system
SETTLING, RESULT_GRACE_S = frozenset({"COMPLETED", "FAILED", None}), 15


class StageFailed(KDError):
    """A stage's job ended without its stage finishing."""


def request(cfg: SlurmConfig, trains: bool, name: str) -> dict:
    """submitit's SlurmExecutor parameters for one job: GPUs and node features for training stages
    only; the others (and the driver) on the CPU partition."""
    params = {"job_name": name, "time": cfg.time, "partition": cfg.partition if trains else cfg.cpu_partition or cfg.partition,
              "account": cfg.account, "qos": cfg.qos, "cpus_per_task": cfg.cpus, "mem": megabytes(cfg.mem_gb),
              "gpus_per_node": cfg.gpus if trains and cfg.gpus else None, "constraint": cfg.constraint if trains else None,
              "additional_parameters": dict(cfg.sbatch) or None, "stderr_to_stdout": True}
    return {k: v for k, v in params.items() if v is not None}


def megabytes(gb: float | None) -> str | None:
    """A memory request as sbatch reads it (``--mem=3072M``): whole megabytes, for any gigabytes
    given (submitit writes the value as it is, and sbatch refuses ``--mem=3.0``)."""
    return None if gb is None else f"{round(gb * 1024)}M"


def sbatch_flags(params: dict) -> list[str]:
    """The sbatch options a request stands for (for ``sbatch --test-only``)."""
    flags = {k: v for k, v in params.items() if k not in ("additional_parameters", "stderr_to_stdout")}
    flags.update(params.get("additional_parameters") or {})
    return [f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}") for k, v in flags.items()]


def command(name: str) -> str:
    """The path of a Slurm command, or a one-line error saying this is not a Slurm machine."""
    path = shutil.which(name)
    if path is None:
        raise KDError(f"--executor slurm: {name} not found; run where Slurm's commands are (a login node), "
                      "or try a one-node Slurm here: tools/slurm-local (docs/gpu.md, On a cluster)")
    return path


def test_only(params: dict, what: str) -> None:
    """Slurm's verdict on a request without queueing it (``sbatch --test-only``): an unknown
    partition, account or QOS, or more than any node has, is one error carrying Slurm's words."""
    done = subprocess.run([command("sbatch"), "--test-only", *sbatch_flags(params), "--wrap", "true"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        words = [line.split("error:", 1)[-1].strip() for line in done.stderr.splitlines() if line.strip()]
        raise KDError(f"Slurm refuses the {what}' jobs ({' '.join(sbatch_flags(params))}): "
                      f"{'; '.join(words) or f'sbatch exited with status {done.returncode}'}")


def log_file(folder: Path, job_id: str) -> Path:
    """A job's log (its stdout and stderr, submitit's lines among them)."""
    from submitit.core.utils import JobPaths

    return JobPaths(folder, job_id=job_id, task_id=0).stdout


def squeue_states(job_ids: list[str]) -> dict[str, str | None]:
    """Each job's state as squeue says it now (None: Slurm no longer holds it)."""
    if not job_ids:
        return {}
    done = subprocess.run([command("squeue"), "-h", "-o", "%i|%T", "--states=all", "-j", ",".join(job_ids)],
                          capture_output=True, text=True)
    if done.returncode != 0 and "Invalid job id" not in done.stderr:
        raise KDError(f"squeue cannot say whether Slurm jobs {', '.join(job_ids)} still run: {done.stderr.strip()}")
    known = dict(line.split("|", 1) for line in done.stdout.split() if "|" in line)
    return {job_id: known.get(job_id) for job_id in job_ids}


class Cluster:
    """Submitting stages, and what the driver knows of their jobs: one squeue for all of them."""

    def __init__(self, cfg: SlurmConfig, folder: Path, poll_s: float = 5.0):
        self.cfg, self.folder, self.poll_s = cfg, Path(folder), poll_s
        self._lock, self._states, self._asked = threading.Lock(), {}, set()
        self._checked = float("-inf")

    def submit(self, spec: dict, trains: bool) -> str:
        import submitit

        command("sbatch")
        executor = submitit.SlurmExecutor(folder=self.folder)
        executor.update_parameters(**request(self.cfg, trains, f"kd:{spec['key']}"))
        return executor.submit(StageJob(), spec).job_id

    def check(self, trains: set[bool]) -> None:
        """What the stages to run will ask for, each kind of request once."""
        for kind in sorted(trains, reverse=True):
            test_only(request(self.cfg, kind, "kd:check"), "training stages" if kind else "stages that do not train")

    def state(self, job_id: str) -> str | None:
        """Cached for ``poll_s``: every waiting stage shares one squeue call."""
        with self._lock:
            self._asked.add(job_id)
            if time.monotonic() - self._checked > self.poll_s or job_id not in self._states:
                self._states = squeue_states(sorted(self._asked))
                self._checked = time.monotonic()
            return self._states.get(job_id)

    def wait(self, key: str, job_id: str) -> dict:
        """Until the job leaves its result: the stage's timing, or ``StageFailed`` with the job's
        state and log."""
        from submitit.core.utils import JobPaths, pickle_load

        result = JobPaths(self.folder, job_id=job_id, task_id=0).result_pickle
        ended = None
        while not result.exists():
            state = self.state(job_id)
            if state in LIVE:
                ended = None
            elif state not in SETTLING:  # stopped by Slurm: no result is coming
                raise self.failure(key, job_id, state, "it left no result")
            elif ended is None:
                ended = time.monotonic()
            elif time.monotonic() - ended > RESULT_GRACE_S:
                raise self.failure(key, job_id, state or "gone from the queue", "it left no result")
            time.sleep(1)
        outcome, value = pickle_load(result)
        if outcome == "success":
            return value
        reason = next((line for line in reversed(value.strip().splitlines()) if line.strip()), "failed")
        raise self.failure(key, job_id, self.state(job_id) or "FAILED", reason.removeprefix("kdcore.errors."))

    def failure(self, key: str, job_id: str, state: str, reason: str) -> StageFailed:
        error = StageFailed(f"stage {key}: Slurm job {job_id} {state}: {reason}; log: {log_file(self.folder, job_id)}")
        error.job = {"job_id": job_id, "state": state, "log": str(log_file(self.folder, job_id))}
        return error


class StageJob:
    """A stage as a job runs it: the notebook (a fit resumes from its last checkpoint), its
    page and its completion record. A stage already finished (a job requeued just as it ended) is
    not run again."""

    def __call__(self, spec: dict) -> dict:
        record = Path(spec["record"])
        if record.exists() and _finished(read_json(record), spec):
            return {k: read_json(record)[k] for k in ("seconds", "work_s", "kernels")}
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())  # Slurm stops the job: see the module's words
        os.environ[WRITER_ENV] = job_token(spec["parameters"]["output"])  # its kernel writes without the lock
        threads = int(os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("SLURM_CPUS_ON_NODE") or 0)
        spec = {**spec, "parameters": {**spec["parameters"], "threads": threads}}
        try:
            with threads_per_kernel(threads):
                return run_recorded(spec, job_id=os.environ.get("SLURM_JOB_ID"))
        except Exception:
            if stopping.is_set():
                while True:  # no result: Slurm kills the job after KillWait and requeues or ends it
                    time.sleep(60)
            raise

    def checkpoint(self, spec: dict):
        """At the time limit's warning: run again, resuming (submitit requeues the job)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, spec)


def _finished(record: dict, spec: dict) -> bool:
    return record.get("status") == "finished" and all(record.get(k) == v for k, v in spec["identity"].items())


DRIVER_RECORD = "driver.json"  # in the submitit folder: the detached driver's job ID and log
DRIVER_MEM_GB = 2.0  # the driver polls and plans (torch imported, no tensor): well under 1 GB resident


def detach(argv: list[str], cfg: SlurmConfig, folder: Path) -> tuple[str, Path]:
    """Submit ``kd <argv>`` as the study's driver: a job of one CPU and ``DRIVER_MEM_GB``, without
    GPUs, for ``driver_time`` minutes, from this folder, its log beside the stage jobs'; whatever
    the stages ask for (``mem_gb`` is theirs: a driver holding a node's memory starves them).
    Returns its job ID and log, also recorded in the folder's ``driver.json`` for ``kd status``."""
    params = {**request(cfg, trains=False, name="kd:driver"), "time": cfg.driver_time, "cpus_per_task": 1,
              "mem": megabytes(DRIVER_MEM_GB)}
    params.pop("stderr_to_stdout")
    test_only(params, "driver")
    folder.mkdir(parents=True, exist_ok=True)
    kd = shlex.join([sys.executable, "-m", "kdcore", *argv])
    done = subprocess.run([command("sbatch"), "--parsable", *sbatch_flags(params), f"--output={folder}/driver_%j.log",
                           "--export=ALL,TQDM_DISABLE=1", "--wrap", kd], capture_output=True, text=True)
    if done.returncode != 0:
        raise KDError(f"sbatch refused the driver: {done.stderr.strip()}")
    job_id = done.stdout.strip().split(";")[0]
    log = folder / f"driver_{job_id}.log"
    write_json(folder / DRIVER_RECORD, {"job_id": job_id, "log": str(log), "submitted": time.time()})
    return job_id, log


def settings(cfg: SlurmConfig, **overrides) -> SlurmConfig:
    """The params file's slurm block with the command line's flags on top (None: not given)."""
    return SlurmConfig(**{**asdict(cfg), **{k: v for k, v in overrides.items() if v is not None}})
