"""A stage notebook as a user meets it in JupyterLab: every cell run, then a screenshot.

The notebook runs all its cells (papermill, on the kdcore kernel) against a finished study's
outputs (nothing trains again), lands in a scratch folder, and JupyterLab serves that folder;
headless Chromium opens the notebook in JupyterLab and takes the screenshot.

    python tools/lab_screenshot.py --params params/demo.yaml --notebook 02_student \
        --teacher resnet-18 --seed 42 --out lab.png

Needs Debian's chromium (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_notebook(notebook: str, parameters: dict, folder: Path) -> Path:
    import papermill

    os.environ.setdefault("TQDM_DISABLE", "1")  # as in a study's reports
    out = folder / f"{notebook}.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / f"{notebook}.ipynb"), str(out), parameters=parameters,
                               kernel_name="python3", cwd=str(ROOT), progress_bar=False)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(folder: Path) -> Path:
    """No news pop-up over the notebook."""
    settings = folder / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    return folder / "settings"


def start_lab(folder: Path, port: int, token: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--ServerApp.token={token}", f"--ServerApp.root_dir={folder}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(_settings(folder.parent))}
    lab = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return lab
        except OSError:
            if lab.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {lab.stderr.read().decode()[-1000:]}") from None
            time.sleep(0.5)
    lab.kill()
    raise RuntimeError("jupyter lab did not start within 60 s")


def screenshot(chromium: str, url: str, out: Path, wait_ms: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1400,1100", f"--user-data-dir={profile}", f"--virtual-time-budget={wait_ms}",
                        f"--screenshot={out}", url], check=True, capture_output=True, timeout=180)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default=str(ROOT / "params" / "demo.yaml"))
    parser.add_argument("--notebook", default="02_student")
    parser.add_argument("--teacher", default="resnet-18")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", default="", help="the study's output folder (default: the params file's)")
    parser.add_argument("--overrides", default="{}", help="other config overrides as JSON, as kd study passes them")
    parser.add_argument("--out", default="lab.png")
    parser.add_argument("--wait-ms", type=int, default=20000, help="how long the page may take to render")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: chromium not found (apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "lab"
        folder.mkdir()
        parameters = {"params": str(Path(args.params).resolve()), "output": args.output, "teacher": args.teacher,
                      "seed": args.seed, "overrides": json.loads(args.overrides)}
        executed = run_notebook(args.notebook, parameters, folder)
        port, token = _free_port(), secrets.token_hex(16)
        lab = start_lab(folder, port, token)
        try:
            screenshot(chromium, f"http://127.0.0.1:{port}/lab/tree/{executed.name}?token={token}",
                       Path(args.out).resolve(), args.wait_ms)
        finally:
            lab.terminate()
            lab.wait(timeout=30)
    print(f"{args.notebook}: every cell ran; JupyterLab screenshot at {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
