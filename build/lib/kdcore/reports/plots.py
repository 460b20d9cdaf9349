"""Figures: each built on a bare matplotlib Figure (shown once by a notebook), saved as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from kdcore.data.labels import FLAME2, LabelSet
from kdcore.io import write_atomic

COMBO_COLOURS = {"NN": "#4c72b0", "YN": "#dd8452", "NY": "#8c8c8c", "YY": "#c44e52"}  # FLAME2's, as before


def colours(labels: LabelSet) -> dict[str, str]:
    """A colour per stratum: FLAME2's four combinations as ever, others from matplotlib's tab20."""
    if labels == FLAME2:
        return COMBO_COLOURS
    from matplotlib import colormaps

    cmap = colormaps["tab20" if len(labels.all_strata()) > 10 else "tab10"]
    return {s: cmap(i % cmap.N) for i, s in enumerate(labels.all_strata())}


def _legend_title(labels: LabelSet) -> str:
    return labels.column if labels.multiclass else ", ".join(labels.names)


def save(fig: Figure, path: str | Path) -> Figure:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    write_atomic(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    return fig


def training_curves(log: dict, title: str) -> Figure:
    """The training objective per epoch (train and val), and the validation criterion the fit
    selected on, beside macro-F1 at 0.5; the kept epoch marked."""
    epochs = [e["epoch"] for e in log["epochs"]]
    selection = log["selection"]
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    loss, select = fig.subplots(1, 2)
    for part in ("train", "val"):
        loss.plot(epochs, [e[part]["loss"] for e in log["epochs"]], marker="o", label=part)
    loss.set(ylabel="training objective")
    if selection["select_on"] != "last":  # a fixed budget selects nothing: its last epoch is kept
        select.plot(epochs, [e["val"][selection["select_on"]] for e in log["epochs"]], marker="o",
                    label=f"{selection['select_on']} (selects)")
    if selection["select_on"] != "macro_f1":
        select.plot(epochs, [e["val"]["macro_f1"] for e in log["epochs"]], marker=".", ls="--", color="grey",
                    label="macro-F1 at 0.5")
    select.set(ylabel="validation", title=selection["criterion"] + (" (never moved)" if selection["flat"] else ""))
    for ax in (loss, select):
        ax.axvline(log["best_epoch"], color="grey", ls=":", lw=1)
        ax.set(xlabel="epoch")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def confusion(metrics: dict, title: str, labels: LabelSet = FLAME2) -> Figure:
    """A 2x2 matrix per label; for classes one matrix, true class by predicted class."""
    if labels.multiclass:
        return _class_confusion(np.asarray(metrics["confusion"]["classes"]), labels, title)
    fig = Figure(figsize=(3.25 * labels.outputs, 3), layout="constrained")
    for ax, label in zip(np.atleast_1d(fig.subplots(1, labels.outputs)), labels.names, strict=True):
        m = np.asarray(metrics["confusion"][label])
        ax.imshow(m, cmap="Blues")
        for (i, j), n in np.ndenumerate(m):
            ax.text(j, i, str(n), ha="center", va="center", color="white" if n > m.max() / 2 else "black")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["pred 0", "pred 1"], yticklabels=["true 0", "true 1"],
               title=f"{label} (F1 {metrics[label]['f1']:.2f})")
    fig.suptitle(title)
    return fig


def _class_confusion(m: np.ndarray, labels: LabelSet, title: str) -> Figure:
    size = 2.5 + 0.45 * labels.outputs
    fig = Figure(figsize=(size, size), layout="constrained")
    ax = fig.subplots()
    ax.imshow(m, cmap="Blues")
    for (i, j), n in np.ndenumerate(m):
        ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color="white" if n > m.max() / 2 else "black")
    ticks = np.arange(labels.outputs)
    ax.set(xticks=ticks, yticks=ticks, xticklabels=labels.names, yticklabels=labels.names,
           xlabel="predicted", ylabel="true")
    fig.suptitle(title)
    return fig


def embedding(points: np.ndarray, strata: np.ndarray, title: str, labels: LabelSet = FLAME2) -> Figure:
    fig = Figure(figsize=(4.5, 4))
    ax = fig.subplots()
    palette = colours(labels)
    for stratum in labels.all_strata():
        mask = strata == stratum
        if mask.any():
            ax.scatter(*points[mask].T, s=8, color=palette[stratum], label=f"{stratum} ({_legend_title(labels)})")
    ax.set(title=title, xticks=[], yticks=[])
    ax.legend(fontsize=7, markerscale=2)
    return fig


def sample_pairs(rgb: np.ndarray, ir: np.ndarray, strata: np.ndarray, labels: LabelSet = FLAME2,
                 per_combo: int = 2) -> Figure:
    per_combo = per_combo if len(labels.all_strata()) <= 4 else 1
    picks = [i for combo in labels.all_strata() for i in np.flatnonzero(strata == combo)[:per_combo]]
    combos = strata
    fig = Figure(figsize=(2.2 * len(picks), 4.4))
    axes = fig.subplots(2, len(picks), squeeze=False)
    for col, i in enumerate(picks):
        for row, (image, name) in enumerate(((rgb[i], "RGB"), (ir[i], "IR"))):
            axes[row, col].imshow(image)
            axes[row, col].set(xticks=[], yticks=[], title=f"{name} {combos[i]}")
    return fig


def label_balance(counts: dict[str, dict[str, int]], labels: LabelSet = FLAME2) -> Figure:
    """counts: part -> stratum (label combination or class) -> frames."""
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    strata, palette = labels.all_strata(), colours(labels)
    width = 0.8 / len(strata)
    for k, combo in enumerate(strata):
        ax.bar(np.arange(len(counts)) + k * width, [counts[p].get(combo, 0) for p in counts], width,
               label=combo, color=palette[combo])
    ax.set(xticks=np.arange(len(counts)) + 0.3, xticklabels=list(counts), ylabel="frames")
    ax.legend(title=_legend_title(labels), fontsize=7)
    return fig


def seed_points(points, summary, label: str, title: str, bounds=(0.0, 1.0)) -> Figure:
    """Each seed a dot (seaborn's strip), the mean a bar and the 95% interval over seeds a line
    where there is one, on the metric's own range.

    points: rows of teacher, model, seed, value; summary: rows of teacher, model, mean, low, high.
    """
    import seaborn as sns

    fig = Figure(figsize=(8, 3.8))
    ax = fig.subplots()
    order = [f"{t}\n{m}" for t, m in zip(summary["teacher"], summary["model"], strict=True)]
    long = points.assign(name=points["teacher"] + "\n" + points["model"]).dropna(subset=["value"])
    if len(long):
        sns.stripplot(data=long, x="name", y="value", order=order, ax=ax, size=4, alpha=0.7, jitter=0.12,
                      color="#4c72b0", zorder=3)
    for i, row in enumerate(summary.itertuples(index=False)):
        if row.mean is not None and not np.isnan(row.mean):
            ax.hlines(row.mean, i - 0.25, i + 0.25, color="black", zorder=4)
        if row.low is not None and not np.isnan(row.low):
            ax.vlines(i, row.low, row.high, color="black", linewidth=1.5, zorder=4)
    ax.set_xticks(range(len(order)), order, fontsize=7, rotation=90)
    ax.set(title=title, xlabel="", ylabel=f"{label} (dots: seeds; line: 95% CI)", ylim=(bounds[0], bounds[1] + 0.02))
    return fig


def paired_lines(points, label: str, title: str, bounds=(0.0, 1.0)) -> Figure:
    """Per teacher, each seed a line from the no-KD student to the student distilled from it.

    points: rows of teacher, model, seed, value (models as in records.ROLES).
    """
    teachers = list(dict.fromkeys(points["teacher"]))
    fig = Figure(figsize=(max(3.0, 2.2 * len(teachers)), 3.6), layout="constrained")
    axes = fig.subplots(1, len(teachers), sharey=True, squeeze=False)[0]
    for ax, teacher in zip(axes, teachers, strict=True):
        own = points[points["teacher"] == teacher].pivot_table(index="seed", columns="model", values="value")
        for seed, row in own.iterrows():
            pair = [row.get("no-KD student"), row.get("distilled student")]
            if not any(v is None or np.isnan(v) for v in pair):
                ax.plot([0, 1], pair, marker="o", color="#dd8452" if pair[1] > pair[0] else "#4c72b0", alpha=0.8)
                ax.annotate(str(seed), (1, pair[1]), fontsize=6, xytext=(3, 0), textcoords="offset points")
        ax.set(xticks=[0, 1], xlim=(-0.3, 1.4), title=teacher, ylim=(bounds[0], bounds[1] + 0.02))
        ax.set_xticklabels(["no-KD", "distilled"])
    axes[0].set_ylabel(f"test {label} (orange: distilled higher)")
    fig.suptitle(title)
    return fig


def differences(table, title: str) -> Figure:
    """Paired differences a - b: the mean over seeds, its interval over seeds (black) and the
    test-block bootstrap interval (orange, test-set uncertainty only), around zero."""
    fig = Figure(figsize=(8, 0.35 * len(table) + 1.5))
    ax = fig.subplots()
    for i, row in enumerate(table.itertuples(index=False)):
        y = len(table) - 1 - i
        if row.boot_low is not None and not np.isnan(row.boot_low):
            ax.hlines(y - 0.15, row.boot_low, row.boot_high, color="#dd8452", linewidth=3)
        if row.low is not None and not np.isnan(row.low):
            ax.hlines(y + 0.15, row.low, row.high, color="black", linewidth=1.5)
        ax.plot(row.mean, y, "o", color="black")
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(table))[::-1], table["name"], fontsize=7)
    ax.set(title=title, xlabel="difference, a - b (black: 95% CI over seeds; orange: test-block bootstrap)",
           xlim=(-1, 1) if len(table) == 0 else None)
    return fig


def methods_by_teacher(table, parts: list[tuple[str, str]], metric: str) -> Figure:
    """Methods x teachers: per part (a column prefix of ``table`` and its title), each method's
    mean difference over seeds with its 95% interval, one colour per teacher, around zero."""
    teachers, methods = list(dict.fromkeys(table["teacher"])), list(dict.fromkeys(table["method"]))
    fig = Figure(figsize=(4.5 * len(parts), 0.45 * len(methods) + 1.8))
    axes = fig.subplots(1, len(parts), sharey=True, squeeze=False)[0]
    offsets = np.linspace(-0.2, 0.2, len(teachers)) if len(teachers) > 1 else [0.0]
    for ax, (part, title) in zip(axes, parts, strict=True):
        for k, teacher in enumerate(teachers):
            rows = table[table["teacher"] == teacher].set_index("method")
            for i, method in enumerate(methods):
                mean, low, high = (rows.loc[method, f"{part} {c}"] if method in rows.index else None
                                   for c in ("mean difference", "CI low", "CI high"))
                if mean is None or np.isnan(mean):
                    continue
                y = len(methods) - 1 - i + offsets[k]
                if low is not None and not np.isnan(low):
                    ax.hlines(y, low, high, color=f"C{k}", linewidth=1.5)
                ax.plot(mean, y, "o", color=f"C{k}", label=teacher if i == 0 or method == methods[0] else None)
        ax.axvline(0, color="grey", linestyle="--", linewidth=1)
        ax.set(title=title, xlabel=f"test {metric} difference (95% CI over seeds)")
    axes[0].set_yticks(range(len(methods))[::-1], methods)
    handles, labels = axes[0].get_legend_handles_labels()
    by_label = dict(zip(labels, handles, strict=True))
    axes[-1].legend(by_label.values(), by_label.keys(), fontsize=8, loc="best")
    return fig


def tradeoff(points: list[tuple[str, float, float, float]], xlabel: str, title: str) -> Figure:
    """points: (name, latency ms, macro-F1, size MB); the marker's area grows with the size."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    sizes = np.array([p[3] for p in points], dtype=float)
    area = 30 + 400 * np.sqrt(sizes / max(sizes.max(), 1e-9)) if len(points) else []
    for (name, x, y, mb), s in zip(points, area, strict=True):
        ax.scatter(x, y, s=s, alpha=0.6)
        ax.annotate(f"{name} ({mb:.2g} MB)", (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set(xlabel=xlabel, ylabel="test macro-F1", title=title, xscale="log", ylim=(0, 1.02))
    return fig


def _interval(rows, part: str):
    """Mean and the error-bar half-widths of ``part`` (missing intervals: no bar)."""
    mean = rows[f"{part} mean difference"].astype(float).to_numpy()
    low = rows[f"{part} CI low"].astype(float).to_numpy()
    high = rows[f"{part} CI high"].astype(float).to_numpy()
    return mean, np.nan_to_num(np.vstack([mean - low, high - mean]), nan=0.0)


def sweep_gain(rows, keys: list[str], gain: str, metric: str = "fire AUROC") -> Figure:
    """The KD gain (mean, 95% CI over seeds) against the first swept key; a line per teacher and
    value of the second key; a panel per value of the third (and further) keys. A numeric first key
    spanning a factor of 10 or more is drawn on a log axis."""
    x_key, line_keys, panel_keys = keys[0], keys[1:2], keys[2:]
    rows = rows.assign(_panel=_joined(rows, panel_keys), _line=_joined(rows, ["teacher", *line_keys]))
    panels = list(dict.fromkeys(rows["_panel"]))
    order = list(dict.fromkeys(rows[x_key].astype(str)))
    numeric = all(_is_number(v) for v in order)
    fig = Figure(figsize=(6.5 * min(len(panels), 2) if len(panels) > 1 else 6.5, 4 * -(-len(panels) // 2)),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(-(-len(panels) // 2), min(len(panels), 2), sharey=True, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        for line, own in rows[rows["_panel"] == panel].groupby("_line", sort=False):
            values = own[x_key].astype(str)
            x = values.astype(float).to_numpy() if numeric else values.map(order.index).to_numpy()
            mean, err = _interval(own, gain)
            ax.errorbar(x, mean, yerr=err, marker="o", capsize=3, label=line)
        if numeric:
            ticks = [float(v) for v in order]
            if min(ticks) > 0 and max(ticks) / min(ticks) >= 10:
                ax.set_xscale("log")
            ax.set_xticks(ticks, order)
            ax.minorticks_off()  # the swept values alone, not a log axis's 6x10^1
        else:
            ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
        ax.axhline(0, color="grey", ls="--", lw=1)
        ax.set(xlabel=x_key, title=panel or "the KD gain (95% CI over seeds) against the swept value")
        ax.legend(fontsize=7, title=", ".join(["teacher", *line_keys]), title_fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    axes[0].set_ylabel(f"distilled - no-KD student, test {metric}")
    if panel_keys:
        fig.suptitle(f"the KD gain (95% CI over seeds) against {x_key}, a panel per {', '.join(panel_keys)}")
    return fig


def point_text(row, keys: list[str]) -> str:
    """A row's values of ``keys`` as one label: ``resnet-18, kd_temperature = 20``."""
    return ", ".join(str(row[k]) if k == "teacher" else f"{k} = {row[k]}" for k in keys)


def _joined(rows, keys: list[str]):
    """``point_text`` of every row."""
    if not keys:
        return [""] * len(rows)
    return rows.apply(point_text, axis=1, keys=keys)


def gain_against_lead(rows, keys: list[str], gain: str, lead: str, metric: str = "fire AUROC") -> Figure:
    """Every teacher at every swept value: its lead over the no-KD student against the gain of
    its student, both with their 95% CIs over seeds. Distillation pulls the student towards its
    teacher, so the points should rise from left to right and sit below the diagonal."""
    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.subplots()
    x, xerr = _interval(rows, lead)
    y, yerr = _interval(rows, gain)
    ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=2, alpha=0.8)
    for xi, yi, teacher, point in zip(x, y, rows["teacher"], rows[keys].astype(str).agg(", ".join, axis=1), strict=True):
        ax.annotate(f"{teacher} @ {point}", (xi, yi), fontsize=6, xytext=(3, 3), textcoords="offset points")
    finite = [v for v in np.concatenate([x, y]) if np.isfinite(v)]
    edge = max([0.05, *map(abs, finite)]) * 1.1
    ax.plot([-edge, edge], [-edge, edge], color="grey", lw=0.8, ls=":", label="gain = lead")
    ax.axhline(0, color="grey", ls="--", lw=1)
    ax.axvline(0, color="grey", ls="--", lw=1)
    ax.set(xlabel=f"teacher - no-KD student, test {metric}", ylabel=f"distilled - no-KD student, test {metric}",
           title="the KD gain against the teacher's lead")
    ax.legend(fontsize=7)
    return fig


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
