"""The study on a real Slurm, as a user's cluster treats it: the driver killed while a teacher's job
trains, that job preempted (``scontrol requeue``) with no driver at all, a new driver detached
(``--detach``) that waits on it, the next stage's job cancelled, and the study run again.

The Slurm is the one `tools/slurm-local` starts (`.ci/run` starts it before the tests, with two GPUs
declared as a generic resource and no devices); elsewhere these tests skip, saying why, unless
KD_SLURM_REQUIRED is set, as it is in CI, where a missing Slurm fails them.

One run of the smoke study (seed 1, resnet-18: five stages) goes through all of it; each test reads
one concern off it. Its numbers are compared with the same stages run in-process (conftest.smoke).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import SMOKE
from golden import TEACHER, record
from killing import kill_tree

from kdcore.io import read_json

pytestmark = pytest.mark.slow
STAGES = ("data/seed_1/00_data", "resnet-18/seed_1/01_teacher", "resnet-18/seed_1/02_student",
          "resnet-18/seed_1/03_compress", "compare")
DATA, TEACHER_STAGE, STUDENT, COMPRESS, COMPARE = STAGES
LIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED")


def _slurm(*args: str, check: bool = True) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=60).stdout.strip()


@pytest.fixture(scope="module")
def cluster():
    """What the Slurm these tests run on has: its GPUs, and where it logs the jobs that ended."""
    try:
        answer = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired) as e:
        answer = SimpleNamespace(returncode=1, stderr=str(e))
    if answer.returncode != 0:
        reason = f"sinfo does not answer ({answer.stderr.strip()[:200]}): no Slurm here (tools/slurm-local starts one)"
        if os.environ.get("KD_SLURM_REQUIRED"):
            pytest.fail(reason)
        pytest.skip(reason)
    config = dict(re.findall(r"^(\w+)\s*=\s*(.*)$", _slurm("scontrol", "show", "config"), re.M))
    gpus = re.search(r"gpu:(\d+)", answer.stdout)
    return SimpleNamespace(gpus=int(gpus.group(1)) if gpus else 0,
                           jobcomp=Path(config["JobCompLoc"]) if config.get("JobCompType") == "jobcomp/filetxt" else None)


def _state(job_id: str) -> str:
    return _slurm("squeue", "-h", "-o", "%T", "--states=all", "-j", job_id, check=False)


def _until(condition, what: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.05)
    return value


def _record(out: Path, key: str) -> dict:
    path = out / "stages" / f"{key}.json"
    return read_json(path) if path.exists() else {}


def _release(job_id: str) -> None:
    """Slurm holds a requeued job about two minutes (its BeginTime): let it start in seconds (at once,
    its node may still be ending its first run, and the start fails: "Job credential revoked")."""
    _until(lambda: _state(job_id) == "PENDING", f"job {job_id} to be requeued")
    _slurm("scontrol", "update", f"JobId={job_id}", "StartTime=now+5")


def _detach(command: list[str]) -> tuple[str, Path, str]:
    """`kd study --detach`: its driver's job ID and log, and what Slurm holds of its request."""
    done = subprocess.run([*command, "--detach"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    job_id = re.search(r"Slurm job (\d+)", done.stdout).group(1)
    return job_id, Path(re.search(r"tail -f (\S+)", done.stdout).group(1)), _slurm("scontrol", "show", "job", job_id)


def _driver_ends(job_id: str, log: Path) -> str:
    _until(lambda: _state(job_id) not in LIVE, f"the driver job {job_id} to end", timeout=600)
    return _until(lambda: log.exists() and log.read_text(), f"the driver's log {log}")


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slurm")
    out, reports = tmp / "out", tmp / "reports"
    params = tmp / "smoke.yaml"
    params.write_text(yaml.safe_dump({**yaml.safe_load(SMOKE.read_text()), "output": str(out),
                                      "csv": str(tmp / "data" / "frame_labels.csv"),
                                      # the stages' memory: never the driver's (it asks for its own)
                                      "slurm": {"cpus": 1, "gpus": 1 if cluster.gpus else 0, "mem_gb": 3}}))
    command = [sys.executable, "-m", "kdcore", "study", str(params), "teachers=[resnet-18]", "seeds=[1]",
               "--executor", "slurm", "--reports", str(reports)]
    run = SimpleNamespace(out=out, reports=reports, since=_size(cluster.jobcomp))

    # the driver dies (a closed terminal) while the teacher's job trains, after its first epoch
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _until(lambda: (out / "models" / TEACHER / "run_seed_1" / "teacher_last.pth").exists()
           or driver.poll() is not None, "the teacher's first epoch")
    assert driver.poll() is None, driver.stderr.read()
    kill_tree(driver.pid)
    run.teacher = _record(out, TEACHER_STAGE)["job_id"]

    # Slurm preempts the teacher's job while no driver waits on it
    _slurm("scontrol", "requeue", run.teacher)
    _release(run.teacher)

    # a new driver, detached, waits on the teacher's job; the student's job is cancelled
    run.driver, run.driver_log, run.driver_request = _detach(command)
    run.finished_at_detach = [key for key in STAGES if _record(out, key).get("status") == "finished"]
    run.student = _until(lambda: _record(out, STUDENT).get("job_id") if _record(out, STUDENT).get("status") == "submitted"
                         else None, "the student's job")
    _until(lambda: _state(run.student) == "RUNNING", "the student's job to run")
    status = subprocess.run([*command[:3], "status", str(params), "teachers=[resnet-18]", "seeds=[1]"],
                            capture_output=True, text=True, timeout=120)
    run.status = status.stdout + status.stderr
    _slurm("scancel", run.student)
    run.failed_log = _driver_ends(run.driver, run.driver_log)
    run.failed_index = (reports / "smoke" / "index.html").read_text()

    # the study again, detached too: the cancelled stage and those that read it; the compression's job
    # is warned of its time limit (submitit's USR2) as it works, and requeues itself
    run.rerun, rerun_log, _ = _detach(command)
    run.compress = _until(lambda: _record(out, COMPRESS).get("job_id"), "the compression's job")
    _until(lambda: (out / "executed" / f"{COMPRESS}.ipynb").exists(), "the compression's notebook to start")
    _slurm("scancel", "--signal=USR2", run.compress)
    _release(run.compress)
    run.rerun_log = _driver_ends(run.rerun, rerun_log)
    return run


def _size(path: Path | None) -> int:
    return path.stat().st_size if path and path.exists() else 0


def _jobs_of(jobcomp: Path, since: int, stage: str) -> set[str]:
    """The jobs Slurm accepted for a stage (a requeued job keeps its ID), from its job completion
    log (from byte ``since`` on: this run's)."""
    with jobcomp.open() as f:
        f.seek(since)
        lines = f.read().splitlines()
    return {re.search(r"JobId=(\d+)", line).group(1) for line in lines if f" Name=kd:{stage} " in line}


def test_a_killed_driver_is_re_attached_and_no_stage_runs_twice(slurm_run, cluster):
    if cluster.jobcomp is None:
        pytest.skip("this Slurm keeps no job completion log (JobCompType=jobcomp/filetxt) to count jobs by")
    jobs = {stage: _jobs_of(cluster.jobcomp, slurm_run.since, stage) for stage in STAGES}
    assert jobs[TEACHER_STAGE] == {slurm_run.teacher}  # submitted once, by the killed driver, and waited on after
    assert f"waiting on {TEACHER_STAGE}: Slurm job {slurm_run.teacher} is" in slurm_run.failed_log
    assert jobs[STUDENT] == {slurm_run.student, _record(slurm_run.out, STUDENT)["job_id"]}  # cancelled, then run again
    assert all(len(jobs[stage]) == 1 for stage in (DATA, COMPRESS, COMPARE)), jobs


def test_requeued_stages_resume_and_end_with_the_numbers_of_an_uninterrupted_run(slurm_run, smoke):
    """The teacher preempted by scontrol requeue, the compression warned of its time limit."""
    cfg, _ = smoke
    for key, job_id in ((TEACHER_STAGE, slurm_run.teacher), (COMPRESS, slurm_run.compress)):
        log = (slurm_run.out / "submitit" / f"{job_id}_0_log.out").read_text()
        assert log.count("Starting with JobEnvironment") == 2, key  # run, stopped, run again
        assert _record(slurm_run.out, key)["job_id"] == job_id
    assert "Requeued job" in (slurm_run.out / "submitit" / f"{slurm_run.compress}_0_log.out").read_text()
    ours, theirs = record(slurm_run.out), record(Path(cfg.output))
    assert sorted(ours) == sorted(theirs) and ours
    for name in ours:
        assert ours[name] == theirs[name], f"{name} differs from the uninterrupted run in-process"


def test_a_cancelled_job_ends_its_stage_in_one_line_and_a_rerun_resubmits_it_alone(slurm_run):
    log = slurm_run.out / "submitit" / f"{slurm_run.student}_0_log.out"
    said = f"stage {STUDENT}: Slurm job {slurm_run.student} CANCELLED: it left no result; log: {log}"
    assert f"failed {said}\n" in slurm_run.failed_log
    errors = [line for line in slurm_run.failed_log.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {said} (2 that read what failed did not run: each is listed above)"]
    assert f"not run {COMPRESS}: it reads what a failed stage makes" in slurm_run.failed_log
    assert f"failed as Slurm job {slurm_run.student}, CANCELLED" in slurm_run.failed_index
    assert os.path.relpath(log, slurm_run.reports / "smoke") in slurm_run.failed_index  # the page links the log
    submitted = re.findall(r"submitted (\S+) as Slurm job", slurm_run.rerun_log)
    assert submitted == [STUDENT, COMPRESS, COMPARE]


def test_kd_status_lists_the_detached_driver_its_running_job_and_its_finished_stages(slurm_run):
    """Read while the study runs detached: the driver's job, the student's running job, what finished."""
    status = slurm_run.status
    assert f"driven by a detached driver, Slurm job {slurm_run.driver} (RUNNING)" in status, status
    assert re.search(rf"running\s+{re.escape(STUDENT)}\s.*Slurm job {slurm_run.student}, running", status), status
    assert re.search(rf"finished\s+{re.escape(DATA)}\s", status) and re.search(rf"finished\s+{re.escape(TEACHER_STAGE)}\s",
                                                                                 status), status


def test_the_driver_asks_for_one_cpu_and_its_own_small_memory(slurm_run):
    from kdcore.study.slurm import DRIVER_MEM_GB

    request = slurm_run.driver_request
    assert "NumCPUs=1" in request and f"MinMemoryNode={DRIVER_MEM_GB:.0f}G" in request, request


def test_detach_returns_at_once_and_the_study_reaches_its_pages(slurm_run):
    assert slurm_run.finished_at_detach == [DATA]  # it returned while the teacher's job was still to run
    assert "finished compare" in slurm_run.rerun_log
    pages = slurm_run.reports / "smoke"
    assert (pages / "compare.html").exists() and all((pages / f"{key}.html").exists() for key in STAGES[:-1])


def test_each_stage_says_one_line_as_it_starts_and_ends_and_nothing_of_sacct(slurm_run):
    for log in (slurm_run.failed_log, slurm_run.rerun_log):
        assert "sacct" not in log and "Bypassing" not in log
    lines = slurm_run.rerun_log.splitlines()
    for key in (STUDENT, COMPRESS, COMPARE):
        assert sum(line.startswith(f"submitted {key} ") for line in lines) == 1
        assert sum(line.startswith(f"finished {key} ") for line in lines) == 1


def test_only_the_training_stages_ask_for_a_gpu(slurm_run, cluster):
    if not cluster.gpus:
        pytest.skip("this Slurm has no GPU to ask for (tools/slurm-local start DIR --gpus 2 declares two)")
    asks = {key: "--gpus-per-node=1" in (slurm_run.out / "submitit" / f"{_record(slurm_run.out, key)['job_id']}_submission.sh").read_text()
            for key in STAGES}
    assert asks == {DATA: True, TEACHER_STAGE: True, STUDENT: True, COMPRESS: True, COMPARE: False}
    assert "gpu" not in slurm_run.driver_request and "NumCPUs=1 " in slurm_run.driver_request


def test_a_request_slurm_refuses_is_one_error_before_anything_is_submitted(cluster, kd, tmp_path):
    code, _, err = kd("study", SMOKE, f"output={tmp_path / 'out'}", "--executor", "slurm",
                      "--slurm_partition", "no-such-partition", "--reports", tmp_path / "reports")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: Slurm refuses the training stages' jobs (") and "invalid partition" in err.lower()
    assert not (tmp_path / "out" / "stages").exists() and not (tmp_path / "out" / "submitit").exists()


def test_a_stage_whose_job_runs_is_never_run_here_too(cluster, kd, tmp_path):
    """An inline run on an output whose stage is a queued job refuses, naming the job."""
    shutil.copy(SMOKE, tmp_path / "smoke.yaml")
    job = _slurm("sbatch", "--parsable", "--hold", "--wrap", "true")  # held: it stays queued
    try:
        from kdcore.io import write_json

        write_json(tmp_path / "out" / "stages" / "data" / "seed_1" / "00_data.json", {"status": "submitted", "job_id": job})
        code, _, err = kd("study", tmp_path / "smoke.yaml", f"output={tmp_path / 'out'}", "--reports", tmp_path / "reports")
    finally:
        _slurm("scancel", job)
    assert code == 2
    assert f"stage data/seed_1/00_data runs as Slurm job {job} (PENDING), it would run here as well" in err
