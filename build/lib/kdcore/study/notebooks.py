"""Running one stage notebook: papermill executes it in a fresh kernel and nbconvert renders its
HTML report (``run_stage``); ``run_recorded`` also writes the stage's completion record. Here, or
in a Slurm job (``kdcore.study.slurm``).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

from kdcore import kit
from kdcore.errors import KDError
from kdcore.io import write_json, write_text

NOTEBOOKS = kit.folder("notebooks")  # the stage notebooks, one per step (a checkout's, or the installed kit's)


@contextmanager
def threads_per_kernel(threads: int):
    """The kernels started meanwhile get ``threads`` OpenMP/BLAS threads. torch's own count is set
    in the kernel, but OpenMP reads its variable once, at start; two kernels on two cores with two
    spinning OpenMP threads each ran 4-5x slower than with one each."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    if threads > 0:
        os.environ.update(dict.fromkeys(names, str(threads)))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_recorded(spec: dict, forked: bool = False, **more) -> dict:
    """Run a stage, then write its completion record (last: after its notebook and page), here or
    in its job on a cluster node, so that a stage whose job finished while no driver waited on it
    is finished all the same. Returns its timing: the seconds it took, and of them its work's."""
    start = time.perf_counter()
    work = run_stage(spec, forked)
    timing = {"seconds": time.perf_counter() - start, "work_s": work, "kernels": "forked" if forked else "spawned"}
    write_json(spec["record"], {"status": "finished", **spec["identity"], **timing, **more, "finished": time.time()})
    return timing


def run_stage(spec: dict, forked: bool = False) -> float:
    """Execute one stage notebook with papermill and render its HTML (here or on a cluster node);
    return the seconds of its work (``work_seconds``). ``forked``: its kernel forks from a process
    with the stage's modules imported (``kdcore.study.kernels``); else papermill spawns a Python."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    from kdcore.study.kernels import ForkedKernelManager

    executed = Path(spec["executed"])
    executed.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars have no reader in a batch-run report
    try:
        papermill.execute_notebook(spec["notebook"], str(executed), parameters=spec["parameters"],
                                   kernel_name="python3", progress_bar=False, cwd=str(Path.cwd()),
                                   extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                                   **({"kernel_manager_class": ForkedKernelManager} if forked else {}))  # failures come back through papermill
    except papermill.PapermillExecutionError as e:
        raise KDError(f"stage {spec['key']}: notebook {Path(spec['notebook']).name} failed in cell "
                      f"{e.exec_count} ({e.ename}: {e.evalue}); executed notebook kept at {executed}") from None
    exporter = HTMLExporter(exclude_input=not spec["show_code"], exclude_input_prompt=True,
                            exclude_output_prompt=True)
    notebook = nbformat.read(executed, as_version=4)
    body, _ = exporter.from_notebook_node(notebook)
    write_text(spec["report"], body)
    return work_seconds(notebook)


NOT_WORK = {"parameters", "injected-parameters", "imports"}  # the tags of cells that set up, not work


def work_seconds(notebook) -> float:
    """The seconds an executed notebook spent in its work: its code cells but those that take the
    parameters and import (papermill times each cell). What a stage costs beyond this is its
    kernel, imports, papermill and the HTML rendering."""
    return sum(cell.metadata.get("papermill", {}).get("duration") or 0.0 for cell in notebook.cells
               if cell.cell_type == "code" and not NOT_WORK & set(cell.metadata.get("tags", [])))
