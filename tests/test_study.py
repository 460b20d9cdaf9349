"""The smoke study end to end through papermill: notebooks, reports, aggregation, reruns."""

import json
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest

from kdcore.errors import KDError
from kdcore.reports.index import run_and_publish
from kdcore.study.notebooks import NOTEBOOKS
from kdcore.study.scheduler import Study, stage_digest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "params" / "smoke.yaml"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_thin_with_a_parameters_cell_and_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    assert all(not c.outputs and c.execution_count is None for c in code)
    logic = [c for c in code if "parameters" not in c.metadata.get("tags", [])]
    assert all(len(c.source.splitlines()) <= 4 and not re.search(r"^\s*(def|for|class) ", c.source, re.M)
               for c in logic)


def _study(tmp, **kwargs):
    overrides = {"output": str(tmp / "out"), "csv": str(tmp / "data" / "frame_labels.csv")}
    return Study(SMOKE, reports=tmp / "reports", overrides=overrides, **kwargs)


def test_every_stage_ran_and_rendered(smoke_study):
    tmp, study, _ = smoke_study
    assert len(study.stages) == 2 * (1 + 2 * 3) + 1 and all(study.finished(s) for s in study.stages)
    reports = study.reports
    assert reports == tmp / "reports" / "smoke"  # the study's own folder, named by its params file
    assert 'href="smoke/index.html"' in (tmp / "reports" / "index.html").read_text()
    index = (reports / "index.html").read_text()
    for stage in study.stages:
        page = study.report(stage)
        assert page.exists(), stage.key
        assert f'href="{page.relative_to(reports).as_posix()}"' in index
        assert (Path(study.cfg.output) / "executed" / f"{stage.key}.ipynb").exists()
        record = json.loads(study.record_path(stage).read_text())
        assert 0 < record["work_s"] < record["seconds"], stage.key
    assert index.count(" s of work)") == len(study.stages) - 1  # each stage but the comparison, in its cell
    figures = (reports / "resnet-18" / "seed_1" / "01_teacher.html").read_text()
    assert figures.count("data:image/png;base64") >= 3  # curves, confusion, t-SNE (smoke draws no UMAP)
    assert "kdcore 0.1.0" in figures and "seed 1; cpu, 1 thread(s), world size 1" in figures  # provenance line
    assert "csv_sha256" in figures and "kd_temperature" in figures  # and the whole record
    assert "stages.configure" not in figures and "Teacher: one multimodal teacher" in figures  # code hidden
    assert (Path(study.cfg.output) / "graphs" / "resnet-18" / "run_seed_1" / "tsne_teacher.png").exists()


def test_aggregated_results_say_what_two_seeds_can(smoke_study):
    _, study, _ = smoke_study
    for teacher in ("resnet-18", "swin-micro"):
        agg = json.loads((Path(study.cfg.output) / "metrics" / teacher / "aggregated_results.json").read_text())
        f1 = agg["student"]["macro_f1"]
        assert f1["n"] == 2 and len(f1["values"]) == 2 and f1["ci95"] == [None, None]
        assert f1["ci_note"].startswith("too few seeds")
        assert agg["teacher"]["f1_macro"]["mean"] == agg["teacher"]["macro_f1"]["mean"]  # the reference's name
        assert set(agg) >= {"teacher", "student", "no_kd_student", "student_int8", "student_pruned", "differences"}
        difference = next(d for d in agg["differences"] if d["metric"] == "fire AUROC")
        low, high = difference["bootstrap low"], difference["bootstrap high"]
        assert low is None or -1 <= low <= high <= 1  # two seeds: the test-block bootstrap still speaks
    compare = (study.reports / "compare.html").read_text()
    for shown in ("p (Holm)", "fire AUROC", "always-positive macro-F1", "test-block bootstrap", "d_z"):
        assert shown in compare, shown
    tables = Path(study.cfg.output) / "metrics" / "compare"
    assert (tables / "differences.csv").exists() and (tables / "models.md").exists()
    import pandas as pd

    models = pd.read_csv(tables / "models.csv")
    bounds = models[[c for c in models if c.endswith((" low", " high"))]].to_numpy(float).ravel()
    bounds = bounds[~np.isnan(bounds)]  # two seeds: no interval at all, the strictest case of the rule
    assert ((bounds >= 0) & (bounds <= 1)).all()  # no interval leaves the metric's range
    assert 'class="kd-summary"' in compare and "<th>0</th>" not in compare  # a sentence first; no index column
    # the paper tables: numbers as CSV, the shown cells as Markdown and LaTeX, listed on the study's index
    latex = (tables / "differences.tex").read_text()
    assert "\\begin{tabular}" in latex and "95\\% CI" in latex and "Holm" in latex
    assert "| resnet-18  | teacher" in (tables / "models.md").read_text()  # grouped by teacher, as shown
    index = (study.reports / "index.html").read_text()
    assert "Tables for a paper" in index and "differences.tex" in index


def test_every_page_reads_as_check_reports_wants(smoke_study):
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    from check_reports import intervals_out_of_range, problems

    _, study, _ = smoke_study
    pages = sorted(study.reports.rglob("*.html"))
    assert len(pages) == len(study.stages) + 1
    assert [p for page in pages for p in problems(page, page.read_text())] == []
    assert intervals_out_of_range("<td>0.900 [0.800, 1.100]</td><td>+0.100 [-1.200, +0.300]</td>") == \
        ["0.900 [0.800, 1.100]", "+0.100 [-1.200, +0.300]"]
    assert intervals_out_of_range("<td>0.943 [0.912, 0.971]</td><td>-0.050 [-0.410, +0.310]</td>") == []


def test_a_second_run_trains_nothing(smoke_study):
    tmp, study, _ = smoke_study
    again = _study(tmp)
    assert again.run(progress=lambda line: None) == []


def test_a_changed_setting_reruns_what_depends_on_it(smoke_study):
    tmp, study, _ = smoke_study
    changed = _study(tmp)
    changed.cfg.teacher("swin-micro").lr = 0.002  # one teacher's own setting
    todo = [s.key for s in changed.stages if not changed.finished(s)]
    assert todo and all("swin-micro" in k or k == "compare" for k in todo)


def test_a_spawned_kernel_writes_what_a_forked_one_does(smoke_study, tmp_path):
    """The smoke study's kernels fork from a warm process (the default); papermill's own spawned
    kernels, running one teacher's and its seed's stages again, write byte-identical metrics."""
    from golden import SEED, TEACHER
    from golden import record as golden_record

    tmp, study, _ = smoke_study
    spawned = Study(SMOKE, reports=tmp_path / "reports", teachers=[TEACHER], compare=False, jobs=2, kernels="spawned",
                    overrides={"output": str(tmp_path / "out"), "csv": str(tmp / "data" / "frame_labels.csv"),
                               "seeds": [SEED]})
    ran = spawned.run(progress=lambda line: None)
    assert {r["kernels"] for r in ran} == {"spawned"} and len(ran) == len(spawned.stages) == 4
    assert {json.loads(study.record_path(s).read_text())["kernels"] for s in study.stages} == {"forked"}
    forked = golden_record(Path(study.cfg.output))
    assert golden_record(tmp_path / "out") == forked and len(forked) >= 9


def test_a_failed_stage_names_its_notebook_and_cell(smoke_study, tmp_path):
    """Through a forked kernel (the default), as every stage of a study runs."""
    tmp, _, _ = smoke_study
    shutil.copytree(tmp / "data", tmp_path / "data")
    broken = sorted((tmp_path / "data" / "254p RGB Images").iterdir())[7]
    broken.write_bytes(broken.read_bytes()[:200])  # a truncated JPEG among the frames
    study = Study(SMOKE, reports=tmp_path / "reports", teachers=["resnet-18"], compare=False,
                  overrides={"output": str(tmp_path / "out"), "csv": str(tmp_path / "data" / "frame_labels.csv"),
                             "seeds": [1]})
    with pytest.raises(KDError, match=r"stage data/seed_1/00_data: notebook 00_data\.ipynb failed in cell \d+ "
                                      rf"\(KDError: unreadable or corrupt image .*{re.escape(broken.name)}"):
        run_and_publish(study, progress=lambda line: None)
    data = study.stages[0]
    assert not study.finished(data)
    assert (Path(study.cfg.output) / "executed" / f"{data.key}.ipynb").exists()  # kept, to read the traceback
    assert not study.report(data).exists()
    page = (study.reports / "index.html").read_text()
    assert "(failed)</b>" in page and f"executed/{data.key}.ipynb" in page  # marked, and what to read linked


def test_compare_refuses_runs_with_other_data_or_config(smoke_study, tmp_path):
    from kdcore.io import read_json, write_json
    from kdcore.reports import stages

    _, study, _ = smoke_study
    shutil.copytree(Path(study.cfg.output) / "metrics", tmp_path / "metrics")
    cfg = stages.configure(str(SMOKE), output=str(tmp_path), overrides={"csv": study.cfg.csv})
    path = tmp_path / "metrics" / "swin-micro" / "run_seed_2" / "final_evaluation.json"
    run = read_json(path)
    run["provenance"]["data"]["csv_sha256"] = "0" * 64  # as if its CSV had been edited
    run["provenance"]["config"]["kd_temperature"] = 2.0
    write_json(path, run)
    with pytest.raises(KDError, match=r"refusing to aggregate: data fingerprints differ: .* vs swin-micro/seed 2; "
                                      r"configs differ: .* vs swin-micro/seed 2 \(allow_mixed"):
        stages.compare_stage(cfg)
    result = stages.compare_stage(cfg, allow_mixed=True)
    assert any("data fingerprints differ" in w for w in result.warnings)


def test_a_second_study_never_touches_the_first_ones_reports(smoke_study, tmp_path):
    tmp, first, _ = smoke_study
    pages = {p: p.read_bytes() for p in first.reports.rglob("*.html")}
    other = tmp_path / "other.yaml"
    other.write_text(SMOKE.read_text())
    second = Study(other, reports=first.reports_root, teachers=["resnet-18"], compare=False,
                   overrides={"output": str(tmp_path / "out"), "seeds": [1], "csv": str(tmp / "data" / "frame_labels.csv")})
    second.stages = []  # its index alone: writing the shared reports folder is what is tested
    run_and_publish(second, progress=lambda line: None)
    assert second.reports == first.reports_root / "other-out" and (second.reports / "index.html").exists()
    assert {p: p.read_bytes() for p in first.reports.rglob("*.html")} == pages
    index = (first.reports_root / "index.html").read_text()
    assert 'href="smoke/index.html"' in index and 'href="other-out/index.html"' in index


def test_studies_of_one_params_file_with_other_outputs_keep_their_own_pages(smoke_study, tmp_path):
    """The same params file with another output, and as a sweep with another output: each gets its
    own report folder, the first study's pages stay as they were, the same study run again finds
    its own folder, and the list of studies says when an output is gone."""
    from kdcore.reports.index import publish
    from kdcore.study.sweep import Sweep

    tmp, first, _ = smoke_study
    params, root = tmp / "smoke.yaml", first.reports_root  # the file the fixture's kd study ran
    pages = {p: p.read_bytes() for p in first.reports.rglob("*.html")}
    other = Study(params, reports=root, overrides={"output": str(tmp_path / "other")})
    other.stages = []
    run_and_publish(other, progress=lambda line: None)
    sweep = Sweep(params, reports=root, overrides={"output": str(tmp_path / "sweep_smoke"),
                                                   "sweep": {"kd_temperature": [2, 8]}})
    publish(sweep)
    assert (first.name, other.name, sweep.name) == ("smoke", "smoke-other", "smoke-sweep_smoke")
    assert Study(params, reports=root).name == "smoke"  # the same study again: its own folder
    assert Study(params, reports=root, overrides={"output": str(tmp_path / "other")}).name == "smoke-other"
    assert {p: p.read_bytes() for p in first.reports.rglob("*.html")} == pages
    shutil.rmtree(tmp_path / "other", ignore_errors=True)
    publish(other)
    listing = (root / "index.html").read_text()
    for name in ("smoke", "smoke-other", "smoke-sweep_smoke"):
        assert f'href="{name}/index.html"' in listing
    gone = next(line for line in listing.splitlines() if 'href="smoke-other/index.html"' in line)
    assert "no longer exists" in gone and str(tmp_path / "other") in gone
    kept = next(line for line in listing.splitlines() if 'href="smoke/index.html"' in line)
    assert "no longer exists" not in kept and str(params) in kept


def _edited_source(tmp_path) -> Path:
    """A copy of kdcore with one source file changed, as after a code edit."""
    from kdcore.study.scheduler import SOURCE

    source = tmp_path / "kdcore"
    shutil.copytree(SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    edited = source / "evaluation" / "metrics.py"
    edited.write_text(edited.read_text() + "\n# an edit\n")
    return source


def test_changed_code_stops_the_study_and_names_the_stale_stages(smoke_study, tmp_path, kd):
    tmp, study, _ = smoke_study
    edited = _study(tmp)
    edited.source = _edited_source(tmp_path)
    assert {r["status"] for r in edited.plan_table()} == {"stale"}
    with pytest.raises(KDError, match=r"15 finished stage\(s\) were produced by other code "
                                      r"\(data/seed_1/00_data, .* and 11 more\): --force .* --keep-results"):
        edited.run(progress=lambda line: None)
    kept = _study(tmp, keep_results=True)
    kept.source = edited.source
    assert kept.run(progress=lambda line: None) == []  # accepted, nothing ran
    record = json.loads(kept.record_path(kept.stages[0]).read_text())
    assert record["kept_from_code"] == study.code_digest_of(study.stages[0]) != record["code"]
    restored = _study(tmp, keep_results=True)  # back to this code for the other tests
    assert restored.run(progress=lambda line: None) == [] and all(restored.finished(s) for s in restored.stages)


def test_dry_run_shows_every_stage_and_runs_nothing(smoke_study, kd):
    tmp, study, _ = smoke_study
    records = {s.key: study.record_path(s).read_bytes() for s in study.stages}
    code, out, _ = kd("study", tmp / "smoke.yaml", "--dry-run", "--reports", tmp / "reports")
    assert code == 0 and "15 finished (dry run: nothing ran)" in out
    assert "finished         resnet-18/seed_1/01_teacher" in out
    assert {s.key: study.record_path(s).read_bytes() for s in study.stages} == records
    code, after_flags, _ = kd("study", tmp / "smoke.yaml", "--dry-run", "--reports", tmp / "reports", "seeds=[1]")
    # a setting after the flags, as before them: one seed's stages, and the comparison of one seed to run
    assert code == 0 and "7 finished, 1 to run (dry run" in after_flags


def test_every_fit_writes_its_curves_as_tensorboard_events(smoke_study):
    """Each fit's event files, read back with TensorBoard's own reader: per epoch of its JSON log, the
    training loss, the validation criterion and the learning rate, and the fit's settings as hparams."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from kdcore.layout import Layout

    _, study, _ = smoke_study
    layout = Layout(study.cfg.output)
    logs = sorted(layout.root.glob("metrics/**/*_train_log.json"))
    assert len(logs) == 2 * (1 + 2 * 3)  # per seed: the no-KD student; per teacher: teacher, student, pruned
    for log_path in logs:
        run = log_path.parent.parent.relative_to(layout.root / "metrics").as_posix()
        seed = int(log_path.parent.name.removeprefix("run_seed_"))
        events = EventAccumulator(str(layout.board_run(run, seed, log_path.name.removesuffix("_train_log.json"))))
        events.Reload()
        epochs = [e["epoch"] for e in json.loads(log_path.read_text())["epochs"]]
        for tag in ("train/loss", "val/mean_auroc", "val/loss", "lr"):
            assert [s.step for s in events.Scalars(tag)] == epochs, (log_path, tag)
        assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")


def test_force_reruns_a_stale_stage(smoke_study, tmp_path):
    tmp, _, _ = smoke_study
    shutil.copytree(tmp / "out", tmp_path / "out")
    overrides = {"output": str(tmp_path / "out"), "csv": str(tmp / "data" / "frame_labels.csv"), "seeds": [1]}
    forced = Study(SMOKE, reports=tmp_path / "reports", force=True, teachers=["resnet-18"], compare=False,
                   overrides=overrides)
    forced.source = _edited_source(tmp_path)
    forced.stages = forced.stages[:1]
    record = json.loads(forced.record_path(forced.stages[0]).read_text())  # as if it had finished here
    forced.record_path(forced.stages[0]).write_text(json.dumps({**record, "digest": stage_digest(forced.cfg, forced.stages[0])}))
    assert forced.status(forced.stages[0])[0] == "stale"
    assert [r["stage"] for r in forced.run(progress=lambda line: None)] == ["data/seed_1/00_data"]
    assert json.loads(forced.record_path(forced.stages[0]).read_text())["code"] == forced.code_digest_of(forced.stages[0])


def test_a_stage_whose_input_is_not_in_the_run_is_refused_not_awaited(tmp_path):
    study = Study(SMOKE, reports=tmp_path / "reports", overrides={"output": str(tmp_path / "out"),
                                                                  "csv": str(tmp_path / "data" / "frame_labels.csv")})
    study.stages = [s for s in study.stages if s.key == "compare"]
    with pytest.raises(KDError, match=r"stage compare reads what stage \S+ makes, which is not part of this run"):
        study.run(progress=lambda line: None)


def test_the_plan_follows_what_each_step_reads(tmp_path):
    """Dependencies come from the steps' declarations; a study without compression ends each
    teacher's chain at 02_student, which then writes the final evaluation."""
    from kdcore.study import steps
    from kdcore.study.config import load_config
    from kdcore.study.scheduler import plan

    cfg = load_config(SMOKE, seeds=[1], compress=False)
    stages = {s.key: s for s in plan(cfg)}
    assert not any(k.endswith("03_compress") for k in stages)
    assert stages["resnet-18/seed_1/02_student"].deps == ["data/seed_1/00_data", "resnet-18/seed_1/01_teacher"]
    assert sorted(stages["compare"].deps) == ["resnet-18/seed_1/02_student", "swin-micro/seed_1/02_student"]
    assert steps.finishes(cfg, "resnet-18", "02_student")
    full = load_config(SMOKE, seeds=[1])
    assert steps.finishes(full, "resnet-18", "03_compress") and not steps.finishes(full, "resnet-18", "02_student")
    assert sorted(next(s for s in plan(full) if s.key == "compare").deps) == [  # whichever step is last
        "resnet-18/seed_1/03_compress", "swin-micro/seed_1/03_compress"]
    assert [s.notebook for s in steps.chain(full, "resnet-18")] == ["00_data", "01_teacher", "02_student", "03_compress"]


def test_a_record_of_an_older_digest_formula_is_stale_not_changed(smoke_study, tmp_path):
    """Its results are kept (stale: --keep-results accepts them, --force reruns), never cleaned as
    if a setting had changed."""
    tmp, _, _ = smoke_study
    shutil.copytree(tmp / "out" / "stages", tmp_path / "out" / "stages")
    overrides = {"output": str(tmp_path / "out"), "csv": str(tmp / "data" / "frame_labels.csv"), "seeds": [1]}
    old = Study(SMOKE, reports=tmp_path / "reports", teachers=["resnet-18"], compare=False, overrides=overrides)
    stage = old.stages[0]
    record = json.loads(old.record_path(stage).read_text())
    old.record_path(stage).write_text(json.dumps({k: v for k, v in record.items() if k != "digest_formula"}
                                                 | {"digest": "0" * 16}))
    assert old.status(stage) == ("stale", "recorded by an older kdcore, whose settings digest is not comparable")
    old._keep([stage])
    assert old.status(stage)[0] == "finished"


def test_a_sweep_shares_what_its_value_cannot_reach_and_a_second_writer_waits_for_the_first(smoke_study, tmp_path, kd):
    """A sweep of two temperatures, started twice on one output: the second waits for the first,
    then finds every stage finished. Two sub-studies, one page; data and teacher run once.
    It reads the smoke study's frames (never writing there) and trains the cheaper teacher."""
    import os
    import subprocess
    import sys
    import time

    from kdcore.study.sweep import Sweep

    out = tmp_path / "out"
    settings = [f"output={out}", f"csv={smoke_study[0] / 'data' / 'frame_labels.csv'}", "seeds=[1]", "teachers=[swin-micro]",
                "compress=false", "embeddings=[]", "sweep={kd_temperature: [2, 4]}"]
    command = ["study", str(SMOKE), *settings, "--reports", str(tmp_path / "reports")]
    first = subprocess.Popen([sys.executable, "-m", "kdcore", *command], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TQDM_DISABLE": "1"})
    lock = out / ".kdcore-writer"
    while not (lock.exists() and f'"pid": {first.pid}' in lock.read_text()):
        assert first.poll() is None, first.stdout.read()
        time.sleep(0.2)
    code, second, waited = kd(*command)  # the same study again, while the first writes
    assert first.wait() == 0 and code == 0
    assert f"waiting for kd study (pid {first.pid}, started " in waited and f"on {out}" in waited
    log = first.stdout.read()
    ran = [line.split()[1] for line in log.splitlines() if line.startswith("finished ")]
    assert ran == ["data/seed_1/00_data", "swin-micro/seed_1/01_teacher", "swin-micro/seed_1/02_student", "compare",
                   "swin-micro/seed_1/02_student", "compare"]  # the second temperature trains its student only
    assert "shared data/seed_1/00_data from smoke-out/kd_temperature=2.0" in log  # named by its output
    assert not any(line.startswith("finished ") for line in second.splitlines())  # the second ran nothing

    sweep = Sweep(SMOKE, reports=tmp_path / "reports", overrides=kd_settings(settings))
    first_study, second_study = sweep.studies
    assert [s.cfg.kd_temperature for s in sweep.studies] == [2.0, 4.0]
    assert all(second_study.finished(s) for s in second_study.stages)
    for shared in ("data/seed_1/00_data", "swin-micro/seed_1/01_teacher"):  # the temperature cannot reach them
        stage = next(s for s in second_study.stages if s.key == shared)
        record = json.loads(second_study.record_path(stage).read_text())
        assert record["shared_from"] == str(first_study.record_path(stage))
        assert second_study.report(stage).samefile(first_study.report(stage))
    teacher = [Path(s.cfg.output) / "models" / "swin-micro" / "run_seed_1" / "teacher_best.pth" for s in sweep.studies]
    assert teacher[0].samefile(teacher[1]) and os.stat(teacher[0]).st_nlink == 2  # one file, two names
    temperatures = [json.loads((Path(s.cfg.output) / "metrics" / "swin-micro" / "run_seed_1" / "final_evaluation.json")
                               .read_text())["provenance"]["config"]["kd_temperature"] for s in sweep.studies]
    assert temperatures == [2.0, 4.0]
    page = sweep.page().read_text()
    assert "kd_temperature" in page and page.count("data:image/png;base64") >= 2 and 'class="kd-summary"' in page
    index = sweep.index().read_text()
    assert 'href="kd_temperature=2.0/index.html"' in index and 'href="sweep.html"' in index


def kd_settings(words: list[str]) -> dict:
    from kdcore.cli import _settings

    return _settings(words)


def test_a_writer_refused_with_no_wait_and_a_killed_holder_taken_over(tmp_path, kd):
    import signal
    import subprocess
    import sys

    from kdcore.io import writer_lock

    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import time
from kdcore.io import writer_lock
with writer_lock({str(out)!r}, "kd study"):
    print("held", flush=True)
    time.sleep(300)"""], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    code, _, err = kd("study", SMOKE, f"output={out}", "--no-wait", "--reports", tmp_path / "reports")
    assert code == 2 and err.startswith(f"error: another writer holds the output: kd study (pid {holder.pid}, started ")
    holder.send_signal(signal.SIGKILL)  # no cleanup at all: the lock file stays, naming the dead holder
    holder.wait()
    with writer_lock(out, "a test", wait=False):  # taken over at once
        assert json.loads((out / ".kdcore-writer").read_text())["who"] == "a test"


@pytest.mark.parametrize("notebook, teacher, unloaded", [("02_student", "resnet-18", ("timm", "torchvision")),
                                                         ("04_compare", "", ("torch", "timm", "torchvision"))])
def test_a_stage_imports_only_what_it_uses(smoke_study, notebook, teacher, unloaded):
    import subprocess
    import sys

    tmp, study, _ = smoke_study
    nb = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    defaults = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    parameters = dict(params=str(SMOKE), output=study.cfg.output, teacher=teacher, seed=1, threads=1,
                      overrides={"csv": str(tmp / "data" / "frame_labels.csv")}, allow_mixed=False)
    code = "\n".join([defaults, *(f"{k} = {v!r}" for k, v in parameters.items()), *cells,
                      f"import sys; print([m for m in {unloaded!r} if m in sys.modules])"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip().splitlines()[-1] == "[]"  # a finished 02_student reads its records: no teacher, no timm


def test_time_left_counts_each_stage_at_the_mean_of_its_kind_so_far():
    from types import SimpleNamespace

    from kdcore.study.scheduler import eta

    ran = [{"notebook": "01_teacher", "seconds": 10}, {"notebook": "01_teacher", "seconds": 20},
           {"notebook": "02_student", "seconds": 100}]
    left = [SimpleNamespace(notebook=n) for n in ("01_teacher", "02_student", "03_compress")]
    assert eta(left, ran, jobs=2) == ", about 79 s left"  # (15 + 100 + 130 / 3) / 2: a kind not yet run at the mean of all
    assert eta(left * 2, ran, jobs=1) == ", about 5 min left" and eta([], ran, 1) == eta(left, [], 1) == ""
