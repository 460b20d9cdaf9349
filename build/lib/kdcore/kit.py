"""The kit's own files beside the code: the stage notebooks, the params files and the benchmarks.

In a checkout they sit at the repository's top level (``notebooks/``, ``params/``,
``benchmarks/``); an installed kdcore carries them inside the package (``kdcore/notebooks``, ...:
the build puts them there, pyproject.toml). Either way ``folder(name)`` finds them.

A params file of the kit names its paths relative to itself (``output: ../runs/demo``), as in a
checkout, where ``kd study`` runs from the repository's root. Installed, the file sits in
site-packages, where nothing may be written: its paths are read as if it sat in ``params/`` of the
folder ``kd`` runs in, so that ``kd study`` writes ``runs/demo`` and ``reports/`` there, as from a
checkout's root.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
FOLDERS = ("notebooks", "params", "benchmarks")


def folder(name: str) -> Path:
    """The kit's ``notebooks``, ``params`` or ``benchmarks`` folder, installed or in a checkout."""
    inside = PACKAGE / name
    return inside if inside.is_dir() else PACKAGE.parent / name


def installed() -> bool:
    """Whether the kit's files come from an installed package (not a checkout)."""
    return (PACKAGE / "params").is_dir()


def params_file(name: str) -> Path:
    """A params file by path, or one of the kit's by name (``control``, ``control.yaml``), so that
    an installed kit runs its own studies from any folder. The path as given when neither exists
    (the caller says it is missing)."""
    path = Path(name)
    if path.exists() or path.parent != Path("."):
        return path
    own = folder("params") / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    return own if own.is_file() else path


def base_folder(params: Path) -> Path:
    """The folder a params file's relative paths start from: its own, or for a params file of an
    installed kit, ``params/`` under the current folder (see the module's note)."""
    params = Path(params).resolve()
    if installed() and params.parent == (PACKAGE / "params").resolve():
        return Path.cwd() / "params"
    return params.parent


def names() -> list[str]:
    """The kit's params files, by name."""
    return sorted(p.stem for p in folder("params").glob("*.yaml"))
