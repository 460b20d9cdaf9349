import copy
import json
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from scipy.special import expit, rel_entr
from torch.utils.data import Dataset

from kdcore.models import Student, create_teacher
from kdcore.study.config import Config
from kdcore.training.loop import FitPaths, FitSettings, TrainingDiverged, fit
from kdcore.training.losses import HardLabels, TeacherOutputs, binary_kl, soft_target_loss
from kdcore.training.methods import KD
from kdcore.training.objective import Distill


class Pairs(Dataset):
    """Random image pairs whose labels follow simple cues: fire from IR, smoke from RGB."""

    def __init__(self, n: int, seed: int, size: int = 32):
        g = torch.Generator().manual_seed(seed)
        self.rgb = torch.rand(n, 3, size, size, generator=g)
        self.ir = torch.rand(n, 3, size, size, generator=g)
        self.labels = torch.stack([(self.ir.mean((1, 2, 3)) > 0.5), (self.rgb[:, 0].mean((1, 2)) > 0.5)], 1).float()
        self.ids = [f"{seed}-{i}" for i in range(n)]
        self.fail_at = None

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        if self.fail_at is not None:
            self.fail_at -= 1
            if self.fail_at < 0:
                raise RuntimeError("injected crash")
        return self.rgb[i], self.ir[i], self.labels[i], self.ids[i]


def _settings(**kw):
    return FitSettings.from_config(Config(), **{"epochs": 3, "patience": 5, "lr": 1e-3, "batch_size": 16,
                                                "seed": 7, "eval_batch_size": 32, "progress": False, **kw})


def _paths(folder, name="student"):
    return FitPaths(folder / f"{name}_best.pth", folder / f"{name}_last.pth", folder / f"{name}_train_log.json")


def _without_timing(log):
    log = copy.deepcopy(log)
    for entry in log["epochs"]:
        entry.pop("timing")
    log.pop("timing")
    return log


# --- the KD loss -----------------------------------------------------------------------------

def test_kd_loss_matches_an_independent_computation():
    rng = np.random.default_rng(0)
    zs, zt = rng.normal(0, 3, (8, 2)), rng.normal(0, 3, (8, 2))
    y = rng.integers(0, 2, (8, 2)).astype(float)
    T, alpha = 4.0, 0.7
    ps, pt = expit(zs / T), expit(zt / T)
    kl = rel_entr(pt, ps) + rel_entr(1 - pt, 1 - ps)
    q = expit(zs)
    bce = -(y * np.log(q) + (1 - y) * np.log(1 - q))
    expected = alpha * T**2 * kl.mean() + (1 - alpha) * bce.mean()
    got = soft_target_loss(torch.tensor(zs), torch.tensor(zt), torch.tensor(y), T, alpha)
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_kd_gradient_pulls_the_student_towards_the_teacher_with_t_squared_scaling():
    zs = torch.tensor([[2.0, -1.0], [0.5, 3.0]], requires_grad=True, dtype=torch.float64)
    zt = torch.tensor([[-1.0, 1.0], [2.0, 3.0]], dtype=torch.float64)
    for T in (1.0, 4.0):
        zs.grad = None
        soft_target_loss(zs, zt, torch.zeros_like(zt), T, alpha=1.0).backward()
        gap = torch.sigmoid(zs / T) - torch.sigmoid(zt / T)
        # d/dzs of T^2 * mean(KL) = T * (ps - pt) / N: the student moves towards the teacher
        assert torch.allclose(zs.grad, T * gap.detach() / zs.numel())
    assert torch.all(binary_kl(zt, zt, 4.0).abs() < 1e-12)  # no loss when they agree


def test_extreme_logits_stay_finite():
    zs = torch.tensor([[80.0, -80.0]], requires_grad=True)
    loss = soft_target_loss(zs, torch.tensor([[-80.0, 80.0]]), torch.tensor([[0.0, 1.0]]), 1.0, 0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(zs.grad).all()


# --- the loop --------------------------------------------------------------------------------

def test_same_seed_gives_identical_logs(tmp_path):
    train, val = Pairs(64, 0), Pairs(32, 1)
    logs = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        torch.manual_seed(0)  # fit must not depend on the global state before it
        logs.append(fit(Student(), HardLabels(), train, val, _settings(), _paths(tmp_path / run)))
    assert json.dumps(_without_timing(logs[0])) == json.dumps(_without_timing(logs[1]))
    assert len(logs[0]["epochs"]) == 3 and logs[0]["stopped_by"] == "epoch_budget"
    entry = logs[0]["epochs"][0]
    for key in ("loss", "subset_accuracy", "macro_f1", "fire", "smoke"):
        assert key in entry["train"] and key in entry["val"]
    assert set(entry["val"]["fire"]) == {"accuracy", "f1", "precision", "recall"}
    assert entry["timing"]["eval_frames_per_s"] > 0 and entry["lr"] == 1e-3


def test_bf16_and_channels_last_run_on_a_cpu_when_asked(tmp_path):
    """The GPU path's settings: left unset, a CPU fit stays fp32 and NCHW; set, its convolutions
    run under bfloat16 autocast on NHWC weights, and learn what the fp32 fit learns."""
    train, val = Pairs(64, 0), Pairs(32, 1)
    runs = {}
    for name, asked in (("fp32", {}), ("bf16", {"bf16": True, "channels_last": True})):
        torch.manual_seed(0)
        model = Student()
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
        dtypes = set()
        conv.register_forward_hook(lambda module, inputs, output, seen=dtypes: seen.add(output.dtype))
        log = fit(model, HardLabels(), train, val, _settings(epochs=1, **asked), _paths(tmp_path / name))
        runs[name] = (dtypes, conv.weight.is_contiguous(memory_format=torch.channels_last), log)
    assert runs["fp32"][:2] == ({torch.float32}, False)
    assert runs["bf16"][:2] == ({torch.bfloat16}, True)
    fp32, bf16 = (runs[name][2]["epochs"][-1]["train"]["loss"] for name in ("fp32", "bf16"))
    assert fp32 != bf16 and abs(fp32 - bf16) < 0.05 * fp32


def test_resume_after_a_mid_epoch_crash_equals_an_uninterrupted_run(tmp_path):
    train, val = Pairs(64, 0), Pairs(32, 1)
    (tmp_path / "full").mkdir()
    (tmp_path / "crash").mkdir()
    torch.manual_seed(0)
    full = fit(Student(), HardLabels(), train, val, _settings(), _paths(tmp_path / "full"))
    train.fail_at = 64 + 40  # one epoch and a bit, then a crash in the middle of epoch 2
    torch.manual_seed(0)  # the same initial weights, whatever ran before
    with pytest.raises(RuntimeError, match="injected crash"):
        fit(Student(), HardLabels(), train, val, _settings(), _paths(tmp_path / "crash"))
    assert len(json.loads((tmp_path / "crash" / "student_train_log.json").read_text())["epochs"]) == 1
    train.fail_at = None
    resumed = fit(Student(), HardLabels(), train, val, _settings(), _paths(tmp_path / "crash"))
    assert json.dumps(_without_timing(resumed)) == json.dumps(_without_timing(full))
    a = torch.load(tmp_path / "full" / "student_best.pth")["model"]
    b = torch.load(tmp_path / "crash" / "student_best.pth")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_finished_fit_drops_its_resume_checkpoint_and_is_not_trained_again(tmp_path):
    train, val = Pairs(64, 0), Pairs(32, 1)
    paths = _paths(tmp_path)
    log = fit(Student(), HardLabels(), train, val, _settings(epochs=2), paths)
    assert paths.best.exists() and paths.log.exists() and not paths.last.exists()
    best = paths.best.read_bytes()
    train.fail_at = 0  # any frame read would crash: the second call must not train
    again = fit(Student(), HardLabels(), train, val, _settings(epochs=2), paths)
    assert again == log
    assert paths.best.read_bytes() == best


def test_short_epochs_are_checkpointed_after_the_first_then_every_half_minute_and_at_the_end(tmp_path, monkeypatch):
    """A crash loses at most CHECKPOINT_EVERY_S of training; a resume from an older checkpoint ends
    as an uninterrupted run (test_resume_after_a_mid_epoch_crash_equals_an_uninterrupted_run)."""
    from kdcore.training import loop

    saved = []
    monkeypatch.setattr(loop, "save_checkpoint", lambda path, payload: saved.append((path.name, payload.get("epoch"))))
    train, val = Pairs(64, 0), Pairs(32, 1)
    log = fit(Student(), HardLabels(), train, val, _settings(epochs=5), _paths(tmp_path / "a"))
    last = [name for name, _ in saved if name == "student_last.pth"]
    assert len(log["epochs"]) == 5 and len(last) == 2  # after epoch 1 and after epoch 5, not between
    best = [epoch for name, epoch in saved if name == "student_best.pth"]
    assert best[-1] == log["best_epoch"]  # the best weights written with the last checkpoint
    saved.clear()
    monkeypatch.setattr(loop, "CHECKPOINT_EVERY_S", 0.0)
    fit(Student(), HardLabels(), train, val, _settings(epochs=5), _paths(tmp_path / "b"))
    assert [name for name, _ in saved].count("student_last.pth") == 5  # epochs as long as the cadence: each


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    train, val = Pairs(64, 0), Pairs(32, 1)
    log = fit(Student(), HardLabels(), train, val, _settings(epochs=30, patience=2, lr=1e-5), _paths(tmp_path))
    assert log["stopped_by"] == "early_stopping"
    assert len(log["epochs"]) == log["best_epoch"] + 2
    assert torch.load(tmp_path / "student_best.pth")["epoch"] == log["best_epoch"]


def test_nan_loss_stops_with_epoch_and_batch_and_keeps_the_best(tmp_path):
    train, val = Pairs(64, 0), Pairs(32, 1)
    train.fail_at = 64 + 8  # epoch 1 ends, epoch 2 crashes at once: the fit resumes into NaN frames
    with pytest.raises(RuntimeError, match="injected crash"):
        fit(Student(), HardLabels(), train, val, _settings(epochs=2), _paths(tmp_path))
    best = (tmp_path / "student_best.pth").read_bytes()
    train.fail_at = None
    train.rgb[train.rgb.shape[0] // 2:] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 2, batch \d+"):
        fit(Student(), HardLabels(), train, val, _settings(epochs=2), _paths(tmp_path))
    assert (tmp_path / "student_best.pth").read_bytes() == best


def test_distillation_leaves_the_teacher_untouched(tmp_path):
    train, val = Pairs(48, 0), Pairs(16, 1)
    teacher = create_teacher("resnet-18", img_size=32).train()
    before = copy.deepcopy(teacher.state_dict())
    criterion = Distill(teacher, KD(), feature_weight=1.0, student_dim=256, teacher_dim=teacher.num_features)
    fit(Student(), criterion, train, val, _settings(epochs=2), _paths(tmp_path))
    assert not teacher.training
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not any(p.requires_grad for p in teacher.parameters())


def test_cached_teacher_outputs_equal_online_ones_for_a_confident_teacher(tmp_path):
    from kdcore.study.work import predict_teacher_outputs

    data = Pairs(48, 0)
    teacher = create_teacher("resnet-18", img_size=32).eval()
    with torch.no_grad():  # logits near 17: a round trip through fp32 sigmoid gives about 16.6
        teacher.head.bias.fill_(17.0)
    predict_teacher_outputs(teacher, data, batch_size=16).save(tmp_path / "outputs.pt")
    cached = TeacherOutputs.load(tmp_path / "outputs.pt")
    batch = (data.rgb[:8], data.ir[:8], data.labels[:8], data.ids[:8])
    online = Distill(teacher, KD()).teacher_logits_and_features(batch)
    offline = Distill(cached, KD()).teacher_logits_and_features(batch)
    assert online[0].abs().max() > 15
    torch.testing.assert_close(offline[0], online[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(offline[1], online[1], atol=1e-5, rtol=0)


def test_label_mask_drops_unlabelled_frames_from_bce_and_keeps_their_kd_term():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(6, 2, generator=g), 3 * torch.randn(6, 2, generator=g)
    targets = (torch.rand(6, 2, generator=g) > 0.5).float()
    mask = torch.tensor([1.0, 1, 0, 0, 1, 0])
    masked = soft_target_loss(student, teacher, targets, 4.0, 0.7, labelled=mask)
    flipped = targets.clone()
    flipped[mask == 0] = 1 - flipped[mask == 0]  # other labels on unlabelled frames: no change
    assert torch.equal(masked, soft_target_loss(student, teacher, flipped, 4.0, 0.7, labelled=mask))
    hard_on_labelled = torch.nn.functional.binary_cross_entropy_with_logits(student[mask == 1], targets[mask == 1])
    soft_on_all = binary_kl(teacher, student, 4.0).mean()
    torch.testing.assert_close(masked, 0.7 * 16 * soft_on_all + 0.3 * hard_on_labelled)
    moved = teacher.clone()
    moved[2] += 5  # an unlabelled frame's teacher output still pulls the student
    assert not torch.equal(masked, soft_target_loss(student, moved, targets, 4.0, 0.7, labelled=mask))
    torch.testing.assert_close(soft_target_loss(student, teacher, targets, 4.0, 0.7, labelled=torch.ones(6)),
                               soft_target_loss(student, teacher, targets, 4.0, 0.7))


def _ddp_worker(rank, world, folder, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = Student()
        log = fit(model, HardLabels(), Pairs(64, 0), Pairs(32, 1), _settings(epochs=1), _paths(folder))
        assert len(log["epochs"]) == 1
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        gathered = [torch.empty_like(weights) for _ in range(world)]
        dist.all_gather(gathered, weights)
        assert torch.equal(gathered[0], gathered[1])  # gradients were averaged across ranks
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_with_two_gloo_processes_runs_an_epoch(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, tmp_path, port), nprocs=2, join=True)
    log = json.loads((tmp_path / "student_train_log.json").read_text())
    assert len(log["epochs"]) == 1 and (tmp_path / "student_best.pth").exists()


def test_a_training_set_one_frame_past_a_full_batch_trains(tmp_path):
    teacher = create_teacher("resnet-18", img_size=32)  # at 32 px its last BatchNorm sees 1x1 maps
    log = fit(teacher, HardLabels(), Pairs(17, 0), Pairs(8, 1), _settings(epochs=1), _paths(tmp_path))
    assert len(log["epochs"]) == 1  # the lone 17th frame would fail BatchNorm in a batch of its own


def test_a_new_kd_loss_is_one_registered_class_and_one_config_value(tmp_path):
    from kdcore.study.config import load_config
    from kdcore.training.methods import METHODS, Method, register
    from kdcore.training.objective import build_criterion

    @register
    class SoftOnly(Method):
        name, complete = "soft_only", True
        options = {"temperature": 4.0, "alpha": 1.0}

        def forward(self, student, teacher, batch):
            return soft_target_loss(student.logits, teacher.logits, batch.targets, self.temperature, alpha=1.0)

    try:
        cfg = load_config(None, kd_loss="soft_only")
        teacher = create_teacher("resnet-18", img_size=32)
        criterion = build_criterion(cfg, teacher)
        assert isinstance(criterion.base, SoftOnly) and criterion.base.temperature == cfg.kd_temperature
        assert isinstance(build_criterion(load_config(None), teacher).base, KD)
        assert isinstance(build_criterion(cfg, None), HardLabels)  # no teacher: the no-KD student's BCE
        log = fit(Student(), criterion, Pairs(32, 0), Pairs(16, 1), _settings(epochs=1), _paths(tmp_path))
        assert log["stopped_by"] == "epoch_budget"
    finally:
        METHODS.pop("soft_only")
