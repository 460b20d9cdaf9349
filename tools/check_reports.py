"""Check the rendered reports as a reader would see them.

Every HTML page under the reports folder is rendered by headless Chromium to a screenshot, and
every figure embedded in it is decoded; links from index.html must point at existing pages; every
stage page opens with its summary sentence; no table has an index column; no "mean [low, high]"
cell leaves its metric's range ([0, 1]; [-1, 1] for a signed difference).

    python tools/check_reports.py [reports] [--screenshots DIR]

Needs Debian's chromium (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import base64
import io
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1280,2000"]


def figures(page: str) -> list[tuple[int, int]]:
    """(width, height) of every embedded PNG; a corrupt one raises."""
    sizes = []
    for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page):
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            im.load()
            sizes.append(im.size)
    return sizes


INDEX_CELL = re.compile(r"<tr>\s*<th>\d+</th>")  # pandas' row labels: a table with an index column
INTERVAL_CELL = re.compile(r"<td>([+-]?)(\d+\.\d+) \[([+-]?\d+\.\d+), ([+-]?\d+\.\d+)\]</td>")


def intervals_out_of_range(text: str) -> list[str]:
    """'mean [low, high]' cells outside [0, 1] (a metric), or [-1, 1] (a signed difference)."""
    bad = []
    for sign, mean, low, high in INTERVAL_CELL.findall(text):
        floor = -1.0 if sign else 0.0
        values = [float(sign + mean), float(low), float(high)]
        if not all(floor <= v <= 1.0 for v in values) or not values[1] <= values[2]:
            bad.append(f"{sign}{mean} [{low}, {high}]")
    return bad


def problems(page: Path, text: str) -> list[str]:
    """What a reader should not meet on a stage page."""
    if page.name == "index.html":
        return []
    found = []
    if 'class="kd-summary"' not in text:
        found.append(f"{page}: no summary sentence")
    if INDEX_CELL.search(text):
        found.append(f"{page}: a table with an index column")
    found += [f"{page}: an interval outside its metric's range: {cell}" for cell in intervals_out_of_range(text)]
    return found


def render(chromium: str, page: Path, screenshot: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={screenshot}",
                        page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    with Image.open(screenshot) as im:
        if im.convert("L").getextrema()[0] == im.convert("L").getextrema()[1]:
            raise RuntimeError(f"{page}: the screenshot is blank")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("reports", nargs="?", default="reports")
    parser.add_argument("--screenshots", help="keep the screenshots here")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: chromium not found (apt-get install chromium)", file=sys.stderr)
        return 2
    reports = Path(args.reports)
    shots = Path(args.screenshots or tempfile.mkdtemp())
    shots.mkdir(parents=True, exist_ok=True)
    missing = [f"{index.parent / href}" for index in reports.rglob("index.html")
               for href in re.findall(r'href="([^"]+\.html)"', index.read_text()) if not (index.parent / href).exists()]
    pages = sorted(reports.rglob("*.html"))
    total, found = 0, []
    for page in pages:
        found += problems(page, page.read_text())
        sizes = figures(page.read_text())
        total += len(sizes)
        render(chromium, page, shots / (page.relative_to(reports).as_posix().replace("/", "_") + ".png"))
        print(f"{page.relative_to(reports)}: rendered, {len(sizes)} figure(s) decoded")
    for problem in found:
        print(problem)
    print(f"{len(pages)} pages rendered in headless Chromium, {total} figures decoded, "
          f"{len(missing)} broken link(s) from index.html{': ' + ', '.join(missing) if missing else ''}, "
          f"{len(found)} page problem(s)")
    return 1 if missing or found else 0


if __name__ == "__main__":
    raise SystemExit(main())
