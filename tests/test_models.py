import pytest
import timm
import torch

from kdcore.errors import KDError
from kdcore.models import STUDY_TEACHERS, TEACHERS, Student, create_teacher, save_backbone
from kdcore.models.profile import count_macs, count_params, profile


@pytest.mark.parametrize("name", STUDY_TEACHERS)
def test_full_size_teacher_trains_a_step_at_224(name):
    torch.manual_seed(0)
    model = create_teacher(name, img_size=224, freeze=True)
    x = torch.randn(2, 3, 224, 224)
    logits = model(x, x)
    assert logits.shape == (2, 2)
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(2, 2)).backward()
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


@pytest.mark.parametrize("name", [n for n in TEACHERS if n not in STUDY_TEACHERS])
def test_small_members_share_the_fusion_code(name):
    model = create_teacher(name, img_size=64).eval()  # eval: no stochastic depth
    x = torch.randn(3, 3, 64, 64)
    features = model.forward_features(x, x)
    assert features.shape == (3, model.num_features)
    assert torch.equal(model.head(features), model(x, x))
    rgb_only = create_teacher(name, img_size=64, rgb_only=True)
    assert rgb_only.ir_trunk is None and rgb_only(x).shape == (3, 2)
    assert count_params(rgb_only)["params_total"] < count_params(model)["params_total"]


def test_vit_concatenates_both_token_sequences():
    model = create_teacher("vit-b-16", img_size=224)
    seen = {}
    model.tail.blocks.register_forward_hook(lambda m, i, o: seen.update(tokens=o.shape[1]))
    x = torch.randn(1, 3, 224, 224)
    model(x, x)
    assert seen["tokens"] == 2 * 197


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    """A timm resnet18 state dict (ImageNet-style, with its classifier) saved to disk."""
    torch.manual_seed(1)
    backbone = timm.create_model("resnet18")
    path = tmp_path_factory.mktemp("weights") / "resnet18.safetensors"
    save_backbone(backbone, path)
    return path, backbone.state_dict()


@pytest.mark.parametrize("ir_init", ["rgb", "random"])
def test_weights_file_loads_exactly(resnet18_file, ir_init):
    path, state = resnet18_file
    model = create_teacher("resnet-18", img_size=64, pretrained=path, ir_init=ir_init)
    assert torch.equal(model.rgb_trunk[0].weight, state["conv1.weight"])  # conv1
    assert torch.equal(model.rgb_trunk[6][1].conv2.weight, state["layer3.1.conv2.weight"])
    assert torch.equal(model.tail[0][0].conv1.weight, state["layer4.0.conv1.weight"])
    assert torch.equal(model.rgb_trunk[1].running_mean, state["bn1.running_mean"])
    assert torch.equal(model.ir_trunk[0].weight, state["conv1.weight"]) == (ir_init == "rgb")


def test_pth_file_loads_too(resnet18_file, tmp_path):
    _, state = resnet18_file
    torch.save(state, tmp_path / "w.pth")
    model = create_teacher("resnet-18", img_size=64, pretrained=tmp_path / "w.pth")
    assert torch.equal(model.rgb_trunk[0].weight, state["conv1.weight"])


def test_mismatched_and_missing_weights_fail_clearly(tmp_path):
    save_backbone(timm.create_model("resnet34"), tmp_path / "resnet34.pth")
    with pytest.raises(KDError, match=r"resnet34\.pth: does not fit backbone 'resnet18': 0 missing .* \d+ unexpected"):
        create_teacher("resnet-18", pretrained=tmp_path / "resnet34.pth")
    save_backbone(timm.create_model("resnet18", num_classes=0), tmp_path / "partial.pth")
    state = torch.load(tmp_path / "partial.pth")
    del state["layer4.1.bn2.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(KDError, match=r"1 missing tensor\(s\) \[layer4\.1\.bn2\.weight\]"):
        create_teacher("resnet-18", pretrained=tmp_path / "partial.pth")
    with pytest.raises(KDError, match=r"pretrained weights for 'resnet18' not found: .*nope\.pth"):
        create_teacher("resnet-18", pretrained=tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(KDError, match=r"junk\.pth: not a readable weights file"):
        create_teacher("resnet-18", pretrained=tmp_path / "junk.pth")
    with pytest.raises(KDError, match="unknown teacher 'resnet-9000'"):
        create_teacher("resnet-9000")


def test_frozen_parts_get_no_update_and_keep_bn_statistics(resnet18_file):
    path, state = resnet18_file
    torch.manual_seed(0)
    model = create_teacher("resnet-18", img_size=64, pretrained=path).train()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    buffers = {n: b.clone() for n, b in model.named_buffers() if "running" in n}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("rgb_trunk.4.") for n in frozen)  # layer1
    assert any(n.startswith("ir_trunk.5.") for n in frozen)  # layer2 of the IR branch (ir_init rgb)
    assert not any(n.startswith(("rgb_trunk.6.", "tail.", "fusion.", "head.")) for n in frozen)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        x = torch.randn(4, 3, 64, 64)
        loss = model(x, x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in frozen.items())
    assert not any(torch.equal(after[n], v) for n, v in trainable.items() if n.endswith("weight"))
    now = dict(model.named_buffers())
    frozen_bn = [n for n in buffers if n.startswith(("rgb_trunk.1.", "rgb_trunk.4.", "ir_trunk.5."))]
    assert frozen_bn and all(torch.equal(now[n], buffers[n]) for n in frozen_bn)
    assert not torch.equal(now["tail.0.0.bn1.running_mean"], buffers["tail.0.0.bn1.running_mean"])


def test_random_init_trains_everything():
    model = create_teacher("resnet-18", img_size=64)
    assert count_params(model)["params_frozen"] == 0


@pytest.mark.parametrize("backbone, size, published", [
    ("resnet152", 224, 11.51e9), ("vit_base_patch16_224", 224, 17.56e9),
    ("swin_tiny_patch4_window7_224", 224, 4.49e9), ("efficientnet_b7", 600, 37.75e9),
])
def test_macs_match_published_figures(backbone, size, published):
    with torch.device("meta"):
        model = timm.create_model(backbone, **({"img_size": size} if "_224" in backbone else {})).eval()
        macs = count_macs(model, (torch.randn(1, 3, size, size),))
    assert macs == pytest.approx(published, rel=0.01)


def test_student_size_and_stem_stride():
    student = Student()
    stats = profile(student, 224, thop=False)
    assert 1.5e6 <= stats["params_total"] <= 1.7e6
    assert stats["gmacs"] == pytest.approx(2.86, abs=0.01)
    assert profile(Student(stem_stride=2), 224, thop=False)["gmacs"] == pytest.approx(0.72, abs=0.01)
    x = torch.randn(2, 3, 64, 64)
    assert student.forward_features(x).shape == (2, 256)


def test_kd_models_prints_every_model(kd):
    code, out, _ = kd("models")
    assert code == 0
    for name in (*STUDY_TEACHERS, "student"):
        assert name in out
    assert "~60 / ~30" in out
