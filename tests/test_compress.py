import numpy as np
import pytest
import torch

from kdcore.compression.onnx import OnnxModel, export_onnx, quantize_onnx
from kdcore.compression.pruning import prune_student
from kdcore.errors import KDError
from kdcore.models import Student
from kdcore.models.checkpoint import load_student, save_student
from kdcore.models.profile import profile


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(0)
    return Student().eval()


def test_pruning_removes_channels_physically(student, tmp_path):
    pruned = prune_student(student, 0.4, 224)
    stats = profile(pruned, 224, thop=False)
    assert stats["params_total"] == pytest.approx(0.58e6, rel=0.02)
    assert stats["gmacs"] == pytest.approx(0.94, abs=0.02)
    assert [b[0].out_channels for b in pruned.features] == [32, 72, 152, 304]  # 40% off, rounded down to multiples of 8
    save_student(pruned, tmp_path / "pruned.pth", image_size=224)
    reloaded, meta = load_student(tmp_path / "pruned.pth")  # built narrow, straight from the file
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(reloaded(x), pruned.eval()(x)) and meta["image_size"] == 224
    assert (tmp_path / "pruned.pth").stat().st_size < 0.4 * 6.7e6


def test_pruning_keeps_whole_original_channels(student):
    pruned = prune_student(student, 0.5, 64)
    original = {tuple(w.flatten().tolist()) for w in student.features[0][0].weight}
    kept = [tuple(w.flatten().tolist()) for w in pruned.features[0][0].weight]
    assert len(kept) == 32 and all(w in original for w in kept)  # removed, not re-initialized


def test_onnx_export_matches_pytorch_and_int8_shrinks(student, tmp_path):
    fp32 = export_onnx(student, tmp_path / "s.onnx", 64)
    x = torch.rand(4, 3, 64, 64)
    assert (OnnxModel(fp32)(x) - student(x)).abs().max() < 1e-4
    calibration = np.random.default_rng(0).random((32, 3, 64, 64), dtype=np.float32)
    int8 = quantize_onnx(fp32, tmp_path / "s_int8.onnx", calibration)
    assert int8.stat().st_size <= 1.9e6 < fp32.stat().st_size
    quantized = OnnxModel(int8)(x)
    assert quantized.shape == (4, 2)
    assert (quantized - student(x)).abs().max() < 0.25 * student(x).abs().max() + 0.05
    assert OnnxModel(int8)(torch.rand(1, 3, 224, 224)).shape == (1, 2)  # any image size


def test_load_student_refuses_other_files(tmp_path):
    torch.save({"model": {}}, tmp_path / "teacher_best.pth")
    with pytest.raises(KDError, match="not a kdcore student checkpoint"):
        load_student(tmp_path / "teacher_best.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(KDError, match=r"junk\.pth: not a kdcore student checkpoint"):
        load_student(tmp_path / "junk.pth")
