import re
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _requirements(lines):
    return {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in lines}


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _requirements(project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pinned = dict(re.findall(r"(torch|torchvision)==([\d.]+)", (ROOT / "Makefile").read_text()))
    wanted.update({name: f"{name}=={version}" for name, version in pinned.items()})  # the Makefile's build
    assert set(pinned) == {"torch", "torchvision"}
    assert _requirements(r for r in pip if not r.startswith("-e")) == wanted


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_version_license_and_citation(capsys):
    from kdcore import __version__
    from kdcore.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"kd {__version__}"
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["version"] == __version__ and citation["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "IEEE Access" in (ROOT / "README.md").read_text()


HEAVY = ("torch", "timm", "torchvision", "sklearn")


def _fresh(code: str) -> str:
    """Run ``code`` in a new interpreter; what it printed."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout


@pytest.mark.parametrize("argv", [["--help"], ["study", "--help"], ["--version"], ["study", "--jbos", "2"],
                                  ["study", "params/demo.yaml", "nokey=1"], ["run", "--teacher"]],
                         ids=lambda a: " ".join(a))
def test_kd_answers_help_and_mistakes_without_loading_a_model_library(argv):
    out = _fresh(f"""
import contextlib, io, sys
from kdcore.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main({argv!r})
    except SystemExit as e:
        code = e.code
print(code, [m for m in {HEAVY!r} if m in sys.modules])""")
    code, loaded = out.split(" ", 1)
    assert loaded.strip() == "[]" and code in ("0", "2")
