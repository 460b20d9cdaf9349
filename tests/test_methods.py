"""The distillation methods of the registry: each at its minimum where the student shows the
teacher's very views, each falling along its own gradient, adapters learning, and a fit with them
that resumes after a crash to an uninterrupted fit's numbers and leaves the student's files as
without them."""

import copy
import json
import re

import onnx
import pytest
import torch
from test_train import Pairs, _paths, _settings, _without_timing

from kdcore.data.labels import FLAME2, LabelSet
from kdcore.errors import KDError
from kdcore.models import Student, create_teacher
from kdcore.training.loop import fit
from kdcore.training.methods import METHODS, Batch, Views, class_log_probs
from kdcore.training.objective import Distill, setup

TERMS = sorted(n for n, cls in METHODS.items() if not cls.complete)
CLASSES = LabelSet("multiclass", ("a", "b", "c"), "letter")


def views(seed: int, outputs: int = 2, grad: bool = False) -> Views:
    g = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(8, outputs, generator=g) * 2, torch.randn(8, 16, generator=g),
               torch.randn(8, 6, 4, 4, generator=g).relu()]
    if grad:
        tensors = [t.clone().requires_grad_(True) for t in tensors]
    return Views(tensors[0], tensors[1], {"s": tensors[2]})


def batch(labels=FLAME2) -> Batch:
    targets = (torch.eye(3)[torch.arange(8) % 3] if labels.multiclass
               else torch.tensor([[i % 2, (i // 2) % 2] for i in range(8)], dtype=torch.float32))
    return Batch(targets, torch.tensor([1.0, 0, 1, 0, 0, 0, 1, 0]), rows=torch.arange(8))


def method(name: str, labels=FLAME2, student: Views | None = None, teacher: Views | None = None, **options):
    m = METHODS[name](labels, "s", "s", **options)
    outputs = 3 if labels.multiclass else 2
    m.setup(student or views(0, outputs), teacher or views(1, outputs))
    if hasattr(m, "set_frames"):
        m.set_frames(8)
    return m


@pytest.mark.parametrize("labels", [FLAME2, CLASSES], ids=["labels", "classes"])
@pytest.mark.parametrize("name", [n for n in TERMS if n != "crd"] + ["kd"])
def test_a_method_is_zero_where_the_student_shows_the_teachers_views(name, labels):
    """Same logits, features and maps (through an identity adapter where it has one): nothing to pass on."""
    same = views(1, 3 if labels.multiclass else 2)
    options = {"alpha": 1.0} if name == "kd" else {}  # Hinton's soft term alone
    m = method(name, labels, same, same, **options)
    if name == "fitnets":
        with torch.no_grad():
            m.adapter.weight.copy_(torch.eye(6).view(6, 6, 1, 1))
            m.adapter.bias.zero_()
    assert m(same, same, batch(labels)).item() == pytest.approx(0.0, abs=1e-6)
    other = views(2, 3 if labels.multiclass else 2)
    assert m(other, same, batch(labels)).item() > 1e-3


def test_the_generalized_loss_is_at_its_minimum_where_the_student_equals_the_softened_teacher():
    """Its soft term is a cross-entropy: not zero, but flat where softmax(z_s) = softmax(z_t / T)."""
    teacher = views(1, 3)
    student = Views((teacher.logits / 4.0).clone().requires_grad_(True))
    METHODS["generalized"](CLASSES, temperature=4.0, alpha=1.0)(student, teacher, batch(CLASSES)).backward()
    assert student.logits.grad.abs().max().item() < 1e-7


def test_crd_picks_the_teachers_embedding_of_the_same_frame_once_the_memories_hold_them():
    """Contrastive: no zero, but a student whose embedding is the teacher's, against memories that
    hold those embeddings, scores each frame's own far above chance (log of 1 + negatives)."""
    same = views(1)
    m = method("crd", student=same, teacher=same)
    m.embed_s.load_state_dict(m.embed_t.state_dict())
    m.eval()
    with torch.no_grad():
        for memory in (m.memory_s, m.memory_t):
            memory.copy_(torch.nn.functional.normalize(m.embed_t(same.features), dim=1))
    loss = m(same, same, batch()).item()
    assert loss < 0.1 * 2 * torch.log(torch.tensor(8.0)).item()


@pytest.mark.parametrize("labels", [FLAME2, CLASSES], ids=["labels", "classes"])
@pytest.mark.parametrize("name", TERMS)
def test_a_method_falls_along_its_own_gradient_and_trains_its_adapters(name, labels):
    outputs = 3 if labels.multiclass else 2
    student, teacher = views(0, outputs, grad=True), views(1, outputs)
    m = method(name, labels, student, teacher)
    leaves = [student.logits, student.features, student.stages["s"]]
    optimizer = torch.optim.Adam([*leaves, *m.parameters()], lr=0.05)
    first = None
    for step in range(30):
        loss = m(student, teacher, batch(labels))
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            first = loss.item()
            for p in m.parameters():  # an adapter, a projector: trained with the student
                assert p.grad is not None and p.grad.abs().sum() > 0
        optimizer.step()
    assert loss.item() < 0.7 * first


def test_class_defined_methods_read_the_label_combinations_for_0_1_labels():
    """Fire and smoke independent given the frame: four combinations, probabilities summing to 1,
    each the product of the labels' own."""
    z = torch.tensor([[2.0, -1.0]])
    p = class_log_probs(z, FLAME2).exp()
    fire, smoke = torch.sigmoid(z[0])
    expected = [(1 - fire) * (1 - smoke), fire * (1 - smoke), (1 - fire) * smoke, fire * smoke]
    torch.testing.assert_close(p[0], torch.stack(expected))
    many = LabelSet("multilabel", tuple(f"l{i}" for i in range(11)))
    with pytest.raises(KDError, match="2\\^11 combinations"):
        METHODS["dkd"](many)


def test_a_method_refuses_an_option_it_does_not_have():
    with pytest.raises(KDError, match="method 'at' has no option 'tau'; its options: p"):
        METHODS["at"](FLAME2, tau=3)


# --- a fit with every method at once ------------------------------------------------------------

@pytest.fixture(scope="module")
def teacher_and_outputs(tmp_path_factory):
    from kdcore.study.work import predict_teacher_outputs

    torch.manual_seed(0)
    teacher = create_teacher("resnet-18", img_size=32).eval()
    data = Pairs(64, 0)
    outputs = predict_teacher_outputs(teacher, torch.utils.data.ConcatDataset([data, Pairs(32, 1)]), batch_size=32)
    return teacher, outputs


def every_method(teacher, outputs, student) -> Distill:
    """Hinton's loss plus every term, each at its default weight, feature methods at the teacher's fused map."""
    terms = [(METHODS[n].weight, METHODS[n](FLAME2, "block3" if n in ("fitnets", "at") else None,
                                             "fusion" if n in ("fitnets", "at") else None)) for n in TERMS]
    criterion = Distill(outputs, METHODS["kd"](FLAME2), terms, labelled_ids=set(outputs.ids[::4]),
                        stage_teacher=teacher)
    setup(criterion, student, outputs, teacher, 32)
    return criterion


def test_a_fit_with_every_method_resumes_to_an_uninterrupted_fits_numbers(tmp_path, teacher_and_outputs):
    """Adapters, projectors, memory banks and DKD's schedule all travel in the checkpoint."""
    teacher, outputs = teacher_and_outputs
    train, val = Pairs(64, 0), Pairs(32, 1)
    runs = {}
    for name in ("full", "crash"):
        (tmp_path / name).mkdir()
        torch.manual_seed(0)
        student = Student(stem_stride=2)
        runs[name] = student, every_method(teacher, outputs, student)
    full = fit(*runs["full"], train, val, _settings(), _paths(tmp_path / "full"))
    train.fail_at = 64 + 40  # a crash in the middle of epoch 2
    with pytest.raises(RuntimeError, match="injected crash"):
        fit(*runs["crash"], train, val, _settings(), _paths(tmp_path / "crash"))
    train.fail_at = None
    torch.manual_seed(0)
    student = Student(stem_stride=2)
    resumed = fit(student, every_method(teacher, outputs, student), train, val, _settings(),
                  _paths(tmp_path / "crash"))
    assert json.dumps(_without_timing(resumed)) == json.dumps(_without_timing(full))
    assert set(full["epochs"][0]["train"]["terms"]) == {"kd", *TERMS}
    a, b = (torch.load(tmp_path / n / "student_best.pth")["model"] for n in ("full", "crash"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_exported_student_is_the_same_with_or_without_methods(tmp_path, teacher_and_outputs):
    """Adapters live in the objective: the student's weights, hooks and ONNX graph are a plain student's."""
    from kdcore.compression.onnx import export_onnx

    teacher, outputs = teacher_and_outputs
    torch.manual_seed(0)
    student = Student(stem_stride=2)
    plain = copy.deepcopy(student)
    fit(student, every_method(teacher, outputs, student), Pairs(64, 0), Pairs(32, 1), _settings(epochs=1),
        _paths(tmp_path))
    assert student.state_dict().keys() == plain.state_dict().keys()
    assert not any(m._forward_hooks for m in student.modules())
    graphs = [onnx.load(export_onnx(m, tmp_path / f"{n}.onnx", 32)).graph for n, m in (("a", student), ("b", plain))]
    assert [n.op_type for n in graphs[0].node] == [n.op_type for n in graphs[1].node]
    assert [i.name for i in graphs[0].initializer] == [i.name for i in graphs[1].initializer]


def test_kd_and_generalized_keep_the_numbers_they_had_before_the_registry():
    """tests/data/objectives_golden.json, recorded before the methods registry: bit for bit on the
    kind of machine that recorded it, within 1e-5 on another (float kernels differ between CPUs)."""
    from golden import machine
    from objectives_golden import GOLDEN, record

    golden, now = json.loads(GOLDEN.read_text()), record()
    assert now.keys() == golden["record"].keys()
    for case, values in golden["record"].items():
        if golden["machine"] == machine():
            assert now[case] == values, case
        else:
            assert [float.fromhex(x) for x in now[case]] == pytest.approx([float.fromhex(x) for x in values],
                                                                          rel=1e-5), case


# --- the methods axis of a study -----------------------------------------------------------------

def test_a_method_is_one_student_stage_per_teacher_and_seed_whose_digest_reads_its_own_entry(tmp_path):
    """Adding a method adds its students alone; changing one reruns its students alone; the shared
    stages (data, teacher, the study's own student) never read the methods."""
    from conftest import SMOKE

    from kdcore.study.config import load_config
    from kdcore.study.scheduler import plan, stage_digest

    base = load_config(SMOKE, seeds=[1], teachers=["resnet-18"], compress=False)
    one = load_config(SMOKE, seeds=[1], teachers=["resnet-18"], compress=False, methods=["fitnets"])
    two = load_config(SMOKE, seeds=[1], teachers=["resnet-18"], compress=False,
                      methods=[{"name": "fitnets", "weight": 10.0}, {"name": "crd", "kd": True}])
    stages = {cfg_name: {s.key: s for s in plan(cfg)} for cfg_name, cfg in (("base", base), ("one", one), ("two", two))}
    assert set(stages["two"]) - set(stages["base"]) == {"resnet-18/fitnets/seed_1/02_student",
                                                       "resnet-18/crd+kd/seed_1/02_student"}
    method_stage = stages["two"]["resnet-18/crd+kd/seed_1/02_student"]
    assert method_stage.deps == ["data/seed_1/00_data", "resnet-18/seed_1/01_teacher"]
    assert sorted(stages["two"]["compare"].deps) == sorted(k for k in stages["two"] if "02_student" in k)

    def digests(cfg, names):
        return {k: stage_digest(cfg, s) for k, s in names.items()}

    shared = [k for k in stages["base"] if k != "compare"]
    assert {k: digests(base, stages["base"])[k] for k in shared} == {k: digests(two, stages["two"])[k] for k in shared}
    fitnets = "resnet-18/fitnets/seed_1/02_student"
    assert digests(one, stages["one"])[fitnets] != digests(two, stages["two"])[fitnets]  # its weight changed


@pytest.mark.parametrize("methods, named", [
    (["fitnetz"], r"config key 'methods\[0\].name': unknown method 'fitnetz'; known: kd, generalized, .*fitnets"),
    ([{"name": "at", "options": {"tau": 2}}], r"config key 'methods\[0\].options': method 'at' has no option 'tau'"),
    ([{"name": "fitnets", "teacher_stage": "layer9"}],
     r"config key 'methods\[0\]': teacher 'resnet-18' has no stage 'layer9'; its stages: rgb.act1, .*fusion, layer4"),
    ([{"name": "at", "student_stage": "block9"}], r"config key 'methods\[0\]': student has no stage 'block9'"),
], ids=["unknown method", "unknown option", "unknown teacher stage", "unknown student stage"])
def test_an_unknown_method_or_stage_is_refused_before_anything_runs(tmp_path, kd, methods, named):
    """By kd check --params and kd study alike, in one line naming the key and listing what exists."""
    import yaml
    from conftest import SMOKE

    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({**yaml.safe_load(SMOKE.read_text()), "csv": str(tmp_path / "none.csv"),
                                      "output": str(tmp_path / "out"), "teachers": ["resnet-18"], "methods": methods}))
    for command in (("check", "--params", params), ("study", params, "--reports", tmp_path / "r")):
        code, out, err = kd(*command)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and re.search(named, lines[-1]), err
    assert not (tmp_path / "out").exists()


def test_the_oracle_is_refused_by_methods_that_read_what_it_has_not():
    from kdcore.study.config import from_dict

    with pytest.raises(KDError, match=r"method 'fitnets' reads stages, and teacher 'oracle' has none"):
        from_dict({"teachers": ["oracle"], "methods": ["fitnets"]})
    assert from_dict({"teachers": ["oracle"], "methods": ["dkd"]}).methods[0].name == "dkd"  # logits it has


def test_kd_models_lists_the_stages_of_every_full_size_family_and_the_student(kd):
    code, out, _ = kd("models", "--stages", "--json")
    rows = {r["name"]: r["stages"] for r in json.loads(out)}
    assert code == 0 and set(rows) == {"resnet-152", "efficientnet-b7", "vit-b-16", "swin-tiny", "student"}
    assert rows["resnet-152"]["fusion"] == [1024, 14, 14] and rows["resnet-152"]["layer4"] == [2048, 7, 7]
    assert rows["vit-b-16"]["blocks.11"] == [768, 14, 14]  # tokens as a map, the class token dropped
    assert rows["swin-tiny"]["layers.2"] == [384, 14, 14] and rows["efficientnet-b7"]["ir.blocks.6"] == [640, 7, 7]
    assert rows["student"] == {"block1": [64, 112, 112], "block2": [128, 56, 56], "block3": [256, 28, 28],
                               "block4": [512, 14, 14]}
