"""Killed anywhere, a study completes when run again, with the numbers of an uninterrupted run.

The smoke study of the session (conftest.smoke_study) is the killed one: `kd study` was SIGKILLed
with its kernels during a teacher's training (a student's fit resumes by the same loop) and during
compression, and run again each time. The uninterrupted reference is the same pipeline run from
scratch in this process (conftest.smoke). Their metrics must agree byte for byte once the timing fields and the
folder names, the only things that may differ, are set aside: the same seed from scratch in another
process gives the same numbers, and so does a run resumed after a kill.
"""

import json
import shutil
import signal
from pathlib import Path

from conftest import SMOKE
from killing import KILL_POINTS

from kdcore.study.scheduler import Study

COMPARED = ("resnet-18/run_seed_1", "no_kd/run_seed_1")
LOCATIONS = ("output", "csv", "cache_dir")


def _canonical(path: Path) -> str:
    def clean(obj):
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if k != "timing" and k not in LOCATIONS}
        return [clean(v) for v in obj] if isinstance(obj, list) else obj

    return json.dumps(clean(json.loads(path.read_text())), sort_keys=True, indent=1)


def test_the_study_was_killed_at_every_point_and_then_finished(smoke_study):
    tmp, study, kills = smoke_study
    assert kills == [what for what, _, _ in KILL_POINTS]
    assert all(study.finished(stage) for stage in study.stages)
    assert all(study.report(stage).exists() for stage in study.stages)


def test_sigterm_ends_the_study_with_every_process_it_started(smoke_study):
    """kd study told to stop (SIGTERM to it alone, as timeout or kill sends it) ends its fork server and
    its stage kernels before it exits: none outlives it to go on training, or to hold its output."""
    from killing import LEFT_BEHIND

    stopped = [what for what, _, signum in KILL_POINTS if signum == signal.SIGTERM]
    assert stopped and all(LEFT_BEHIND[what] == [] for what in stopped), LEFT_BEHIND


def test_killed_and_rerun_gives_the_metrics_of_an_uninterrupted_run(smoke_study, smoke):
    _, study, _ = smoke_study
    cfg, _ = smoke
    for run in COMPARED:
        ours = sorted((Path(study.cfg.output) / "metrics" / run).glob("*.json"))
        theirs = sorted((Path(cfg.output) / "metrics" / run).glob("*.json"))
        assert [p.name for p in ours] == [p.name for p in theirs] and ours
        for a, b in zip(ours, theirs, strict=True):
            assert _canonical(a) == _canonical(b), f"{run}/{a.name} differs from the uninterrupted run"


def test_no_file_that_looks_finished_is_half_written(smoke_study):
    _, study, _ = smoke_study
    for path in Path(study.cfg.output).rglob("*.json"):
        json.loads(path.read_text())  # every JSON parses: none was cut off by a kill


def test_temporaries_of_killed_writes_are_swept_at_the_next_run_of_their_stage(smoke_study, tmp_path):
    from kdcore.io import write_text

    tmp, _, _ = smoke_study
    shutil.copytree(tmp / "out", tmp_path / "out")
    run = tmp_path / "out" / "models" / "resnet-18" / "run_seed_1"
    stray = write_text(run / ".student_best.pth.abc123.tmp", "half a checkpoint")  # as a SIGKILL leaves it
    study = Study(SMOKE, reports=tmp_path / "reports", teachers=["resnet-18"], compare=False, force=True,
                  overrides={"output": str(tmp_path / "out"), "csv": str(tmp / "data" / "frame_labels.csv"),
                             "seeds": [1]})
    study._start(next(s for s in study.stages if s.key == "resnet-18/seed_1/02_student"))
    assert not stray.exists()
