"""Model files are what people share: loading one must never run code from it."""

import pathlib

import pytest
import torch

from kdcore.errors import KDError


class Payload:
    """What a malicious pickle does on load: here, only touch a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def _planted(tmp_path, content) -> tuple[pathlib.Path, pathlib.Path]:
    marker, path = tmp_path / "payload-ran", tmp_path / "evil.pth"
    torch.save(content(Payload(marker)), path)
    return path, marker


def test_kd_predict_refuses_a_malicious_pickle_without_running_it(tmp_path, kd):
    path, marker = _planted(tmp_path, lambda p: {"kind": "kdcore-student", "arch": {}, "model": p})
    (tmp_path / "images").mkdir()
    code, _, err = kd("predict", "--model", path, "--images", tmp_path / "images", "--out", tmp_path / "p.csv")
    assert code == 2 and err.startswith("error: ") and "not a kdcore student checkpoint" in err
    assert len(err.strip().splitlines()) == 1
    assert not marker.exists()


def test_pretrained_weights_refuse_a_malicious_pickle_without_running_it(tmp_path):
    from kdcore.models import create_teacher

    path, marker = _planted(tmp_path, lambda p: {"conv1.weight": p})
    with pytest.raises(KDError, match="not a readable weights file"):
        create_teacher("resnet-18", img_size=32, pretrained=str(path))
    assert not marker.exists()


def test_no_user_supplied_path_is_loaded_with_pickle():
    source = "\n".join(p.read_text() for p in pathlib.Path(__file__).parents[1].joinpath("kdcore").rglob("*.py"))
    assert "weights_only=False" not in source
