"""Running one stage notebook: papermill executes it in a fresh kernel and nbconvert renders its
HTML report, here (``run_stage``) or as a submitit job on a cluster or this machine (``submit``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from kdcore.errors import KDError
from kdcore.io import write_text

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"  # the stage notebooks, one per step


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


def submit(spec: dict, executor_name: str, folder: Path, slurm: dict) -> float:
    """Through submitit: ``slurm`` on a cluster, ``submitit-local`` on this machine. Its kernel is
    spawned: a job runs one stage, so a warm process to fork from would cost what it saves."""
    import submitit

    if executor_name == "slurm":
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(**slurm)
    elif executor_name == "submitit-local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=slurm.get("timeout_min", 60))
    else:
        raise KDError(f"--executor must be inline, slurm or submitit-local (got {executor_name!r})")
    job = executor.submit(run_stage, spec)
    try:
        return job.result()
    except submitit.core.utils.FailedJobError as e:
        raise KDError(f"stage {spec['key']}: the submitted job failed: {str(e).strip().splitlines()[-1]}") from None


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
