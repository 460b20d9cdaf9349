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


def build_wheel(folder: Path) -> Path:
    """The wheel pip builds from the checkout, with no network (setuptools from the project's venv),
    leaving no build folder in the checkout."""
    import shutil
    import subprocess
    import sys

    had_build = (ROOT / "build").exists()
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(folder)], check=True, cwd=folder.parent)
    finally:
        if not had_build:
            shutil.rmtree(ROOT / "build", ignore_errors=True)
    return next(folder.glob("*.whl"))


def test_the_wheel_and_the_sdist_carry_the_kit_and_every_package(tmp_path):
    """Every package of kdcore/ is listed for the build; the sdist carries the notebooks, params
    files and benchmarks where the checkout has them, and the wheel puts them into the package
    (kdcore.kit finds them there once installed)."""
    import subprocess
    import sys
    import tarfile
    import zipfile

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {p.parent.relative_to(ROOT).as_posix().replace("/", ".") for p in (ROOT / "kdcore").rglob("__init__.py")}
    kit = {f"kdcore.{name}" for name in ("notebooks", "params", "benchmarks")}
    assert set(project["packages"]) == on_disk | kit
    build = "from setuptools import build_meta as b; import sys; print(b.build_sdist(sys.argv[1]))"
    sdist = subprocess.run([sys.executable, "-c", build, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()[-1]
    build_wheel(tmp_path)
    in_sdist = {Path(n).relative_to(Path(n).parts[0]).as_posix() for n in tarfile.open(tmp_path / sdist).getnames()
                if len(Path(n).parts) > 1}
    in_wheel = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    for folder, pattern in (("notebooks", "*.ipynb"), ("params", "*.yaml"), ("benchmarks", "*.py")):
        files = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).glob(pattern)}
        assert files and files <= in_sdist and {f"kdcore/{f}" for f in files} <= in_wheel, folder


@pytest.mark.slow
def test_installed_from_its_wheel_the_kit_runs_a_study_outside_the_checkout(tmp_path):
    """No checkout in sight: the wheel installed into a scratch venv (its dependencies read from the
    project's venv: no network), then in a folder of one's own `kd init --csv`, `kd check --params`,
    `kd study` with `kd status` while it runs and after, and the kit's own params by name."""
    import os
    import subprocess
    import sys
    import time

    venv = tmp_path / "venv"
    build_wheel(tmp_path / "wheel")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "project-deps.pth").write_text(next(Path(sys.prefix).glob("lib/python*/site-packages")).as_posix() + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q",
                    *map(str, (tmp_path / "wheel").glob("*.whl"))], check=True)
    home = tmp_path / "home"
    home.mkdir()
    # data files of the dependencies (nbconvert's templates, the kernel spec) come from the project's venv too
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": "", "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter")}

    def kd(*args, cwd=home, check=True):
        done = subprocess.run([str(venv / "bin" / "kd"), *map(str, args)], cwd=cwd, env=env, capture_output=True,
                              text=True)
        assert not check or done.returncode == 0, done.stderr
        return done

    located = subprocess.run([str(venv / "bin" / "python"), "-c", "import kdcore.kit as k; print(k.folder('notebooks'))"],
                             cwd=home, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert located.startswith(str(site)) and ROOT.as_posix() not in located
    kd("synth", "--out", "data", "--frames", 240, "--size", 48)
    init = kd("init", "mystudy", "--csv", "data/frame_labels.csv", "--like", "smoke").stdout
    assert "240 frame pairs" in init and "next: cd mystudy" in init
    study = home / "mystudy"
    assert "kd study would start" in kd("check", "--params", "study.yaml", cwd=study).stdout
    run = subprocess.Popen([str(venv / "bin" / "kd"), "study", "seeds=[1]", "compress=false", "embeddings=[]"],
                           cwd=study, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = set()
    while run.poll() is None:
        out = kd("status", "seeds=[1]", "compress=false", "embeddings=[]", cwd=study, check=False).stdout
        seen |= {line.split()[0] for line in out.splitlines()[1:-1] if line.strip()}
        time.sleep(1)
    assert run.returncode == 0, run.stderr.read()[-2000:]
    assert "running" in seen  # kd status saw a stage at work, beside the study, without its lock
    after = kd("status", "seeds=[1]", "compress=false", "embeddings=[]", cwd=study).stdout
    assert "6 finished" in after.splitlines()[-1] and "driven by nothing" in after
    assert (study / "reports" / "study" / "compare.html").exists() and (study / "runs" / "models").is_dir()
    plan = kd("study", "smoke", "--dry-run").stdout  # the kit's own params by name, its paths in this folder
    assert "15 to run" in plan and not (home / "runs").exists()
