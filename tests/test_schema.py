"""Every bad-input case of the frame CSV: one line naming file and row, exit status 2."""

import json
import re
import shutil

import pandas as pd
import pytest
from PIL import Image

from kdcore.data import describe, read_frame_csv


@pytest.fixture
def table(tmp_path):
    """A valid three-pair table in tmp_path; tests break it in one way each."""
    for i in range(3):
        Image.new("RGB", (16, 12), (i, 0, 0)).save(tmp_path / f"rgb{i}.jpg")
        Image.new("RGB", (16, 12), (0, i, 0)).save(tmp_path / f"ir{i}.jpg")
    df = pd.DataFrame({"id": ["a", "b", "c"], "rgb_frame": [f"rgb{i}.jpg" for i in range(3)],
                       "ir_frame": [f"ir{i}.jpg" for i in range(3)], "fire": [0, 1, 1],
                       "smoke": [0, 0, 1], "group": [0, 0, 1]})
    return tmp_path, df


def _check(kd, root, df):
    df.to_csv(root / "t.csv", index=False)
    return kd("check", "--csv", root / "t.csv")


def test_valid_table_summary(table, kd):
    root, df = table
    code, out, err = _check(kd, root, df)
    assert code == 0, err
    assert "3 frame pairs" in out and "NN 1, YN 1, NY 0, YY 1" in out and "16x12 (3)" in out
    summary = describe(read_frame_csv(root / "t.csv", progress=False))
    assert summary["groups"] == 2 and summary["positives"] == {"fire": 2, "smoke": 1}


def test_absolute_paths_and_base_path(table, tmp_path, kd):
    root, df = table
    elsewhere = tmp_path / "csvs"
    elsewhere.mkdir()
    df["rgb_frame"] = [str(root / p) for p in df["rgb_frame"]]
    df.to_csv(elsewhere / "t.csv", index=False)
    code, _, err = kd("check", "--csv", elsewhere / "t.csv", "--base_path", root)
    assert code == 0, err


@pytest.mark.parametrize("breakage, message", [
    (lambda root, df: df.drop(columns="smoke"), r"t\.csv: missing column\(s\) smoke"),
    (lambda root, df: df.assign(fire=["0", "2", "1"]), r"t\.csv: row 3: column 'fire' must be 0 or 1, found '2'"),
    (lambda root, df: df.assign(smoke=["0", "", "1"]), r"row 3: column 'smoke' must be 0 or 1, found ''"),
    (lambda root, df: df.assign(id=["a", "b", "a"]), r"row 4: duplicate id 'a' \(first at row 2\)"),
    (lambda root, df: df.assign(group=["0", "x", "1"]), r"row 3: column 'group' must be an integer"),
    (lambda root, df: df.head(0), r"t\.csv: the CSV has a header but no rows"),
])
def test_bad_table(table, kd, breakage, message):
    root, df = table
    code, out, err = _check(kd, root, breakage(root, df))
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert re.search(message, err), err


@pytest.mark.parametrize("breakage, message", [
    (lambda root: (root / "ir1.jpg").unlink(), r"row 3 \(id 'b'\): image not found: .*ir1\.jpg"),
    (lambda root: (root / "rgb2.jpg").write_bytes(b"not an image"), r"row 4 \(id 'c'\): unreadable or corrupt image .*rgb2\.jpg"),
    (lambda root: (root / "rgb0.jpg").write_bytes((root / "rgb0.jpg").read_bytes()[:200]),
     r"row 2 \(id 'a'\): unreadable or corrupt image .*rgb0\.jpg"),
    (lambda root: Image.new("RGB", (16, 16)).save(root / "ir1.jpg"),
     r"row 3 \(id 'b'\): RGB image is 16x12 but IR image is 16x16"),
])
def test_bad_images(table, kd, breakage, message):
    root, df = table
    breakage(root)
    code, _, err = _check(kd, root, df)
    assert code == 2
    assert re.search(message, err), err


def test_empty_and_missing_csv(tmp_path, kd):
    (tmp_path / "empty.csv").write_text("")
    code, _, err = kd("check", "--csv", tmp_path / "empty.csv")
    assert code == 2 and "empty.csv: the CSV is empty" in err
    code, _, err = kd("check", "--csv", tmp_path / "nope.csv")
    assert code == 2 and "nope.csv: no such CSV file" in err


def test_check_prints_every_split_mode_with_its_leakage_and_fractions(synth_csv, kd, tmp_path):
    shutil.copytree(synth_csv.parent, tmp_path / "copy")
    code, out, _ = kd("check", "--csv", tmp_path / "copy" / "frame_labels.csv", "--json", "--gap_frames", "0")
    assert code == 0
    report = json.loads(out)
    splits = {a["mode"]: a for a in report["splits"]}
    assert splits["stratified"]["near_duplicate_share"] > 0.5 and splits["stratified"]["leaks"]
    assert splits["stratified"]["val_near_duplicate_share"] > 0.5  # val leaks too: early stopping sees copies
    for mode in ("group", "block"):
        assert splits[mode]["near_duplicate_share"] == 0.0 and splits[mode]["val_near_duplicate_share"] == 0.0
    parts = splits["block"]["parts"]
    assert sum(p["frames"] for p in parts.values()) == 400
    assert all(p["combos"]["NN"] > 0 for p in parts.values())
    code, out, _ = kd("check", "--csv", tmp_path / "copy" / "frame_labels.csv")
    assert "block: near-duplicates of test 0.0%" in out and "LEAKS" in out and "share" in out


def test_a_label_with_one_value_is_a_loud_warning(table, kd):
    root, df = table
    code, _, err = _check(kd, root, df.assign(fire=0))  # no fire-positive frame anywhere
    assert code == 0 and "WARNING: label 'fire' is 0 on all 3 frames of the data" in err


def test_a_blank_id_is_an_error_naming_the_row(table, kd):
    root, df = table
    df["id"] = df["id"].astype(object)
    df.loc[1, "id"] = " "
    code, _, err = _check(kd, root, df)
    assert code == 2 and "row 3: blank id" in err
