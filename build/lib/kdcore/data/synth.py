"""A synthetic FLAME-like data set in the FLAME2 layout, built so that IR knows what RGB does not.

The "video" is a sequence of segments, each one camera pass drifting slowly over its own textured
terrain, so adjacent frames are near-duplicates and labels come in long runs, as in FLAME2.
- fire: hot spots, always bright in the thermal palette; in RGB only some are visible, dimly,
  and smoke hides them further;
- smoke: grey haze over at least half of the RGB frame, nearly transparent in IR;
- distractors: orange and sun-lit patches in RGB that are cold in IR.
An RGB-only model must guess fire from weak, confusable cues; an RGB+IR model need not.

``SynthOptions`` turns the knobs a control experiment needs: how often and how clearly fire shows
in RGB, how many distractors there are, how thick smoke is, and whether IR sees fire at all (the
negative control). Each frame's truth beyond its labels goes into the CSV: ``fire_rgb_visible``.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kdcore.data.flame2 import IR_DIR, IR_NAME, RGB_DIR, RGB_NAME, import_flame2
from kdcore.errors import KDError
from kdcore.io import atomic_path
from kdcore.layout import synth_csv
from kdcore.progress import progress as progress_bar

LABEL_FILE = "Frame Pair Labels.txt"
_HEADER = (
    "FirstFrameNumber - LastFrameNumber Fire(Y/N)Smoke(Y/N)",
    "Fire (Y/N) indicates whether or not there is fire visible in the RGB and/or Thermal frame",
    "Smoke (Y/N) indicates whether smoke fills >= 50% of the RGB frame",
    "",
)
_COMBO_WEIGHTS = {"NN": 0.3, "YY": 0.3, "YN": 0.3, "NY": 0.1}
SMOKE_VISIBLE = 0.3  # haze alpha above which a pixel counts as covered by smoke


@cache
def _thermal_palette() -> np.ndarray:
    """matplotlib's inferno as 256 RGB colours: a thermal camera's palette (loaded where frames are drawn)."""
    from matplotlib import colormaps

    return (colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bicubically."""
    coarse = rng.random((cells, cells), dtype=np.float32)
    img = Image.fromarray(coarse, mode="F").resize(shape[::-1], Image.BICUBIC)
    field = np.asarray(img, dtype=np.float32)
    return (field - field.min()) / max(float(np.ptp(field)), 1e-6)


def _blob(shape: tuple[int, int], cy: float, cx: float, radius: float) -> np.ndarray:
    y = np.arange(shape[0], dtype=np.float32)[:, None]
    x = np.arange(shape[1], dtype=np.float32)[None, :]
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * radius**2)).astype(np.float32)


@dataclass(frozen=True)
class SynthOptions:
    rgb_fire: float = 0.45  # chance that a fire shows in visible light at all
    rgb_fire_alpha: float = 0.5  # how clearly it shows (mean opacity of its glow, +-0.2)
    distractors: int = 3  # 1 to this many orange, cold patches per segment (0: none)
    smoke_opacity: float = 1.0  # thick haze's opacity, as a share of the default (lower: harder)
    ir_fire: bool = True  # False: fires carry no heat in IR (IR knows nothing RGB does not)
    passes: int = 0  # camera passes (segments) to cut the frames into; 0: one per 30 frames, 16 to 100

    @classmethod
    def from_dict(cls, values: dict) -> SynthOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise KDError(f"unknown synth option {unknown[0]!r}; known: {', '.join(sorted(known))}")
        options = cls(**values)
        if not (0 <= options.rgb_fire <= 1 and 0 <= options.rgb_fire_alpha <= 1 and options.distractors >= 0
                and 0 < options.smoke_opacity <= 1.2 and options.passes >= 0):
            raise KDError(f"synth options out of range: {asdict(options)}")
        return options


RGB_VISIBLE = 0.1  # fire glow opacity (after smoke) above which a frame's fire counts as RGB-visible


@dataclass
class Frame:
    rgb: np.ndarray  # HxWx3 uint8
    ir: np.ndarray  # HxWx3 uint8, thermal palette
    smoke_alpha: np.ndarray  # HxW float32, haze opacity in the RGB frame
    fire_rgb_visible: bool = False


class Segment:
    """One camera pass: world layers built once, frames cropped from them as the camera drifts."""

    def __init__(self, rng: np.random.Generator, size: int, length: int, fire: bool, smoke: bool,
                 options: SynthOptions = SynthOptions()):
        self.rng, self.size, self.length, self.options = rng, size, length, options
        drift = int(np.ceil(0.35 * size))
        world = (size + drift, size + drift)
        self.path = self._camera_path(drift)
        self.smoke_path = self._camera_path(drift)
        self.rgb, self.temp = self._terrain(world)
        self.fire_alpha = np.zeros(world, np.float32)
        self.fire_heat = np.zeros(world, np.float32)
        self._distractors(world)
        if fire:
            self._fire(world, drift)
        self.smoke_alpha = self._smoke(world, smoke)
        # sensor noise: a small bank drawn once per pass, cycled through frame by frame
        self.noise = rng.standard_normal((5, size, size, 4), dtype=np.float32)

    def _camera_path(self, drift: int) -> np.ndarray:
        """Top-left corners moving in a straight line across the drift margin."""
        start = self.rng.uniform(0, drift, 2)
        end = self.rng.uniform(0, drift, 2)
        t = np.linspace(0, 1, self.length)[:, None]
        return np.rint(start + (end - start) * t).astype(int)

    def _terrain(self, world):
        veg = _smooth_noise(self.rng, world, 6)
        soil = _smooth_noise(self.rng, world, 12)
        grass, dirt, trees = (np.array(c, np.float32) for c in ((70, 115, 55), (125, 105, 75), (35, 70, 35)))
        rgb = grass * (1 - soil[..., None]) + dirt * soil[..., None]
        rgb = rgb * (1 - 0.6 * veg[..., None]) + trees * 0.6 * veg[..., None]
        rgb += self.rng.normal(0, 10, world + (1,)).astype(np.float32)  # fine texture
        sun = _smooth_noise(self.rng, world, 4)
        rgb += 40 * sun[..., None] ** 3  # sun-lit patches: bright in RGB, barely warmer in IR
        temp = 0.18 + 0.12 * (1 - veg) + 0.05 * sun
        return rgb.astype(np.float32), temp.astype(np.float32)

    def _distractors(self, world):
        """Orange patches in RGB (roofs, flowers, equipment) with no heat."""
        most = self.options.distractors
        for _ in range(self.rng.integers(1, most + 1) if most else 0):
            cy, cx = self.rng.uniform(0, world[0], 2)
            blob = _blob(world, cy, cx, self.rng.uniform(0.02, 0.06) * self.size)
            colour = np.array([235, self.rng.uniform(90, 150), 30], np.float32)
            self.rgb = self.rgb * (1 - 0.8 * blob[..., None]) + colour * 0.8 * blob[..., None]

    def _fire(self, world, drift):
        """Hot spots inside the region every frame of the pass sees."""
        for _ in range(self.rng.integers(1, 4)):
            radius = self.rng.uniform(0.035, 0.07) * self.size
            lo, hi = drift + 2 * radius, self.size - 2 * radius
            cy, cx = self.rng.uniform(lo, max(lo + 1, hi), 2)
            blob = _blob(world, cy, cx, radius)
            if self.options.ir_fire:
                self.fire_heat = np.maximum(self.fire_heat, blob)
            if self.rng.random() < self.options.rgb_fire:  # only some fires show in visible light, and dimly
                alpha = self.options.rgb_fire_alpha
                self.fire_alpha = np.maximum(self.fire_alpha, self.rng.uniform(alpha - 0.2, alpha + 0.2) * blob)

    def _smoke(self, world, smoke: bool) -> np.ndarray:
        density = _smooth_noise(self.rng, world, 5)
        if smoke:  # thick haze with thinner holes: at least half of any view is covered
            return (self.options.smoke_opacity * (0.45 + 0.45 * density)).astype(np.float32)
        if self.rng.random() < 0.5:  # a thin wisp on a clear day: hard negatives
            return (0.35 * np.clip(density - 0.6, 0, None) / 0.4).astype(np.float32)
        return np.zeros(world, np.float32)

    def frame(self, t: int) -> Frame:
        (y, x), (sy, sx) = self.path[t], self.smoke_path[t]
        view = np.s_[y:y + self.size, x:x + self.size]
        smoke = self.smoke_alpha[sy:sy + self.size, sx:sx + self.size]
        flicker = self.rng.uniform(0.8, 1.2)
        fire = np.clip(self.fire_alpha[view] * flicker, 0, 1)[..., None]
        rgb = self.rgb[view] * (1 - fire) + np.float32([255, 150, 40]) * fire
        rgb = rgb * (1 - smoke[..., None]) + np.float32([190, 190, 195]) * smoke[..., None]
        noise = self.noise[t % len(self.noise)]
        rgb += 3 * noise[..., :3]
        temp = (self.temp[view] + 0.8 * flicker * self.fire_heat[view]) * (1 - 0.1 * smoke)
        temp += 0.01 * noise[..., 3]
        ir = _thermal_palette()[np.clip(temp * 255, 0, 255).astype(np.uint8)]
        visible = bool((fire[..., 0] * (1 - smoke)).max() > RGB_VISIBLE)
        return Frame(np.clip(rgb, 0, 255).astype(np.uint8), ir, smoke, visible)


def plan_segments(rng: np.random.Generator, frames: int, passes: int = 0) -> list[tuple[str, int]]:
    """(combo, length) runs: NN first as in FLAME2, then a shuffled mix with at least three runs of
    every combination, so that a group split can give each part some of each. ``passes`` runs in
    all (0: one per 30 frames, 16 to 100). More, shorter passes give every part more independent
    stretches of video: a label budget's blocks and a test set's blocks vary less between seeds."""
    count = passes or int(np.clip(frames // 30, 16, 100))
    if count < 16:
        raise KDError(f"synth option 'passes' must be 0 or at least 16 (got {count})")
    if frames < 2 * count:
        raise KDError(f"--frames must be at least {2 * count} (got {frames})")
    names, weights = zip(*_COMBO_WEIGHTS.items(), strict=True)
    combos = ["NN", "NN", "YY", "YY", "YY", "YN", "YN", "YN", "NY", "NY", "NY"]
    combos += list(rng.choice(names, size=count - 1 - len(combos), p=weights))
    rng.shuffle(combos)
    combos = ["NN", *combos]
    shares = rng.uniform(0.5, 1.5, count)
    lengths = np.maximum(2, np.floor(shares / shares.sum() * frames)).astype(int)
    lengths[0] += frames - lengths.sum()
    return list(zip(combos, lengths.tolist(), strict=True))


def write_label_file(path: Path, segments: list[tuple[str, int]]) -> None:
    """As distributed: CRLF line endings, header lines, no final newline."""
    lines, start = list(_HEADER), 1
    for combo, length in segments:
        lines.append(f"{start}\t{start + length - 1}\t{combo}")
        start += length
    path.write_bytes("\r\n".join(lines).encode())


def _render_segment(out: Path, size: int, seed: int, index: int, combo: str, length: int,
                    first: int, options: SynthOptions) -> list[bool]:
    """Write one segment's frames; its own random stream keeps the output independent of workers.
    Returns, per frame, whether its fire shows in RGB."""
    rng = np.random.default_rng([seed, index])
    segment = Segment(rng, size, length, fire=combo[0] == "Y", smoke=combo[1] == "Y", options=options)
    visible = []
    for t in range(length):
        f = segment.frame(t)
        Image.fromarray(f.rgb).save(out / RGB_DIR / RGB_NAME.format(n=first + t), quality=90)
        Image.fromarray(f.ir).save(out / IR_DIR / IR_NAME.format(n=first + t), quality=90)
        visible.append(f.fire_rgb_visible)
    return visible


def synth(out: str | os.PathLike, frames: int = 2000, size: int = 128, seed: int = 0,
          progress: bool = True, workers: int | None = None, options: SynthOptions | dict | None = None) -> Path:
    """Write the data set under ``out`` and import it; return the path of its frame CSV."""
    options = SynthOptions.from_dict(options or {}) if not isinstance(options, SynthOptions) else options
    if size < 32:
        raise KDError(f"--size must be at least 32 pixels (got {size})")
    out = Path(out)
    (out / RGB_DIR).mkdir(parents=True, exist_ok=True)
    (out / IR_DIR).mkdir(parents=True, exist_ok=True)
    segments = plan_segments(np.random.default_rng(seed), frames, options.passes)
    firsts = np.cumsum([1] + [length for _, length in segments[:-1]])
    jobs = [(out, size, seed, i, combo, length, int(first), options)
            for i, ((combo, length), first) in enumerate(zip(segments, firsts, strict=True))]
    with ProcessPoolExecutor(workers or os.cpu_count() or 1) as pool, \
            progress_bar(total=frames, desc="synthesizing", unit="pair", enabled=progress) as bar:
        visible = []
        for done in pool.map(_render_segment, *zip(*jobs, strict=True)):
            visible += done
            bar.update(len(done))
    write_label_file(out / LABEL_FILE, segments)
    csv = synth_csv(out)
    import_flame2(out, csv, labels=out / LABEL_FILE)
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    table["fire_rgb_visible"] = np.asarray(visible, int)[table["id"].astype(int).to_numpy() - 1]
    table["video"] = table["group"]  # each segment is a camera pass of its own: none touches the next in time
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)
    return csv
