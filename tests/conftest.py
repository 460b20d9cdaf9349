import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ["TQDM_DISABLE"] = "1"  # keep stderr to what the tests read


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
