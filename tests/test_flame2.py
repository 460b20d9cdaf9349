from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from kdcore.data import import_flame2, parse_label_ranges
from kdcore.data.flame2 import IR_DIR, IR_NAME, RGB_DIR, RGB_NAME
from kdcore.errors import KDError

PUBLISHED = Path(__file__).resolve().parent / "data" / "flame2_frame_pair_labels.txt"  # as distributed

LABELS = ("FirstFrameNumber - LastFrameNumber Fire(Y/N)Smoke(Y/N)\r\n"
          "Fire (Y/N) indicates fire\r\nSmoke (Y/N) indicates smoke\r\n\r\n"
          "1\t4\tNN\r\n5\t8\tYY\r\n8\t10\tYN\r\n10\t12\tYN\r\n13\t14\tNY")  # no final newline


def _layout(root: Path, rgb_frames, ir_frames):
    (root / RGB_DIR).mkdir(parents=True)
    (root / IR_DIR).mkdir(parents=True)
    for n in rgb_frames:
        Image.new("RGB", (8, 8), (n, 0, 0)).save(root / RGB_DIR / RGB_NAME.format(n=n))
    for n in ir_frames:
        Image.new("RGB", (8, 8), (0, n, 0)).save(root / IR_DIR / IR_NAME.format(n=n))
    (root / "Frame Pair Labels.txt").write_bytes(LABELS.encode())
    return root


def test_parses_the_published_label_file():
    ranges = parse_label_ranges(PUBLISHED)
    assert len(ranges) == 19
    assert (ranges[0].start, ranges[0].end, ranges[0].fire, ranges[0].smoke) == (1, 13700, 0, 0)
    assert ranges[-1].end == 53451
    assert sum(r.fire and r.smoke for r in ranges) == 9


def test_import_reports_every_irregularity(tmp_path):
    # frame 3 has no IR image, frame 15 has no label, frame 14 has no images, 8 and 10 overlap
    root = _layout(tmp_path / "flame2", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15],
                   [1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15])
    out = tmp_path / "elsewhere" / "labels.csv"
    report = import_flame2(root, out)
    df = pd.read_csv(out)
    problems = {kind.split(",")[0]: frames for kind, frames in report.problems.items()}
    assert problems["frames with an RGB image but no thermal image"] == [3]
    assert problems["frame pairs inside no label range"] == [15]
    assert problems["labelled frames with no images"] == [14]
    assert problems["frames inside two conflicting label ranges"] == [8]  # YY then YN
    assert problems["frames inside two agreeing label ranges"] == [10]  # YN and YN
    assert df["id"].tolist() == [1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13]
    assert df.set_index("id").loc[10, "group"] == 2  # the first of its two ranges
    assert df.set_index("id").loc[5, ["fire", "smoke"]].tolist() == [1, 1]
    first = out.parent / df["rgb_frame"].iloc[0]  # paths are relative to the CSV's folder
    assert first.resolve() == (root / RGB_DIR / RGB_NAME.format(n=1)).resolve()
    assert any("conflicting" in line and "(frames 8)" in line for line in report.lines())


def test_bad_label_line_names_the_line(tmp_path):
    bad = tmp_path / "labels.txt"
    bad.write_text("header\n1\t5\tNN\n6\t9\tmaybe\n")
    with pytest.raises(KDError, match=r"line 3: expected 'start<TAB>end<TAB>XY'"):
        parse_label_ranges(bad)


def test_cli_import_on_missing_folder(kd, tmp_path):
    (tmp_path / "Frame Pair Labels.txt").write_text("1\t2\tNN")
    code, _, err = kd("import-flame2", "--root", tmp_path, "--out", tmp_path / "x.csv")
    assert code == 2
    assert err.startswith("error: ") and "254p RGB Images: image folder not found" in err
    assert not (tmp_path / "x.csv").exists()


def test_default_split_of_published_flame2_has_every_combination_in_every_part():
    """The published label file's 53,451 frames, labelled and grouped as import_flame2 does."""
    import numpy as np

    from kdcore.data import make_split
    from kdcore.data.flame2 import ImportReport, label_frames
    from kdcore.data.labels import FLAME2
    from kdcore.data.splits import FRACTIONS
    from kdcore.study.config import Config

    labels, _ = label_frames(parse_label_ranges(PUBLISHED), ImportReport())
    frames = sorted(labels)  # the importer's row order
    combos = FLAME2.strata(np.array([labels[n][:2] for n in frames]))
    groups = np.array([labels[n][2] for n in frames])
    cfg = Config()
    for seed in cfg.seeds:
        split = make_split(combos, groups, cfg.split, seed, cfg.block_frames, cfg.gap_frames)
        assert split.mode == "block"
        kept = sum(len(ix) for ix in split.parts().values())
        for part, ix in split.parts().items():
            assert {"NN", "YN", "YY"} <= set(combos[ix].tolist()), (seed, part)
            assert abs(len(ix) / kept - FRACTIONS[part]) < 0.05, (seed, part)
        assert np.isin(split.test, split.train).sum() == 0
