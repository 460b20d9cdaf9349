import os
from contextlib import contextmanager
from pathlib import Path

import pytest

SMOKE = Path(__file__).resolve().parents[1] / "params" / "smoke.yaml"

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ["TQDM_DISABLE"] = "1"  # keep stderr to what the tests read


def pytest_collection_modifyitems(items):
    """A test of the smoke study shares its one run of every stage (about 1.5 minutes on 2 cores): slow."""
    for item in items:
        if "smoke_study" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def synth_csv(tmp_path_factory):
    """A small synthetic data set shared by the tests that only read it."""
    from kdcore.data import synth

    return synth(tmp_path_factory.mktemp("synth"), frames=400, size=64, seed=0, progress=False)


@pytest.fixture
def kd(capsys):
    """Run the CLI in-process: returns (exit status, stdout, stderr)."""
    from kdcore.cli import main

    def run(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@contextmanager
def one_torch_thread():
    """As in a study's kernels with two jobs on two cores: results compare bit for bit."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """The smoke config's pipeline for one teacher and seed, run here, once, uninterrupted."""
    from golden import run_smoke

    return run_smoke(tmp_path_factory.mktemp("smoke"))


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory):
    """The smoke study through `kd study --jobs 2`, killed at each of killing.KILL_POINTS in turn
    and run again until it finished: (folder, Study for inspecting it, what each kill hit)."""
    import yaml
    from killing import KILL_POINTS, kd_study

    from kdcore.study.scheduler import Study

    tmp = tmp_path_factory.mktemp("study")
    out, csv, reports = tmp / "out", tmp / "data" / "frame_labels.csv", tmp / "reports"
    params = tmp / "smoke.yaml"
    params.write_text(yaml.safe_dump({**yaml.safe_load(SMOKE.read_text()), "output": str(out), "csv": str(csv)}))
    kills = [what for what, reached, signum in KILL_POINTS
             if kd_study(params, out, reports, until=reached, signum=signum, what=what)]
    kd_study(params, out, reports)
    study = Study(SMOKE, reports=reports, overrides={"output": str(out), "csv": str(csv)}, jobs=2)
    return tmp, study, kills
