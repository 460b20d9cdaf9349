"""Running `kd study` as its own process, and killing it the moment it reaches a given point.

A kill is SIGKILL to the study and every process under it (the notebook kernels), as a scheduler
ending a job does; or SIGTERM to the study alone, as `kill`, `timeout` or a supervisor sends it,
after which the study must end its kernels itself. A point is a test on the output folder: a file
appearing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

RUN = Path("models/resnet-18/run_seed_1")


def _file(relative: Path):
    return lambda out: (out / relative).exists()


# what the study is doing, and how the test sees that it got there. A stage's record is written last
# (after its executed notebook and its page), so a kill anywhere before it reruns the stage: these
# two add what a rerun must also get right, a fit resumed mid-way and a step's files half made.
KILL_POINTS = [
    ("training a teacher, after its first epoch", _file(RUN / "teacher_last.pth"), signal.SIGKILL),
    ("SIGTERM to kd study alone while a student trains", _file(RUN / "student_last.pth"), signal.SIGTERM),
    ("compressing, once the fp32 ONNX file is written", _file(RUN / "student.onnx"), signal.SIGKILL),
]
LEFT_BEHIND: dict[str, list[str]] = {}  # per SIGTERM point: the study's processes alive after it exited


def kill_tree(pid: int) -> None:
    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in processes:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=30)


def stop(pid: int, what: str, timeout: float = 60) -> None:
    """SIGTERM to the study alone; once it exited, whichever of its processes are still alive go to
    ``LEFT_BEHIND[what]`` (and are then killed, so that no test leaves them running)."""
    parent = psutil.Process(pid)
    started = parent.children(recursive=True)
    parent.send_signal(signal.SIGTERM)
    parent.wait(timeout)
    alive = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    LEFT_BEHIND[what] = [" ".join(p.cmdline()[:3]) for p in alive]
    for p in alive:
        kill_tree(p.pid)


def kd_study(params: Path, output: Path, reports: Path, until=None, timeout: float = 600,
             signum: int = signal.SIGKILL, what: str = "") -> bool:
    """Run ``kd study --jobs 2``; with ``until``, kill it once ``until(output)`` holds (``signum``:
    SIGKILL to its whole tree, or SIGTERM to the study alone).

    Returns True when it was killed, False when it finished; raises when it failed, hung, or
    finished before reaching ``until``.
    """
    command = [sys.executable, "-m", "kdcore", "study", str(params), "--jobs", "2", "--reports", str(reports)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TQDM_DISABLE": "1"})
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if until is not None and until(output):
            stop(proc.pid, what) if signum == signal.SIGTERM else kill_tree(proc.pid)
            return True
        if time.monotonic() > deadline:
            kill_tree(proc.pid)
            raise TimeoutError(f"kd study did not finish within {timeout} s")
        time.sleep(0.02)
    if proc.returncode != 0 or until is not None:
        raise RuntimeError(f"kd study ended with status {proc.returncode} "
                           f"{'before the kill point ' if until else ''}{proc.stderr.read()[-2000:]}")
    return False
