import pytest

from kdcore.errors import KDError
from kdcore.study.config import Config, TeacherConfig, from_dict, load_config


def test_defaults_are_the_seeds():
    cfg = Config()
    assert (cfg.epochs_teacher, cfg.epochs_student, cfg.patience_teacher, cfg.patience_student) == (50, 30, 10, 5)
    assert (cfg.lr_teacher, cfg.lr_student, cfg.kd_temperature, cfg.prune_sparsity) == (1e-4, 1e-3, 4.0, 0.4)
    assert cfg.seeds == [42, 123, 456, 789, 1024]


def test_yaml_with_overrides(tmp_path):
    (tmp_path / "p.yaml").write_text("epochs_teacher: 3\nteachers: [resnet-18, {name: vit-tiny, batch_size: 8}]\n")
    cfg = load_config(tmp_path / "p.yaml", epochs_teacher=None, lr_student=0.01, seeds=[1])
    assert cfg.epochs_teacher == 3 and cfg.lr_student == 0.01 and cfg.seeds == [1]
    assert cfg.teachers == [TeacherConfig("resnet-18"), TeacherConfig("vit-tiny", batch_size=8)]
    assert cfg.digest() != load_config(tmp_path / "p.yaml").digest()
    assert load_config(tmp_path / "p.yaml", output="/elsewhere").digest() == load_config(tmp_path / "p.yaml").digest()


@pytest.mark.parametrize("values, message", [
    ({"epoch_teacher": 3}, r"unknown config key 'epoch_teacher'"),
    ({"epochs_teacher": "ten"}, r"config key 'epochs_teacher': expected int, found str 'ten'"),
    ({"epochs_teacher": True}, r"config key 'epochs_teacher': expected int"),
    ({"seeds": 42}, r"config key 'seeds': expected a list"),
    ({"seeds": [1, "x"]}, r"config key 'seeds\[1\]': expected int"),
    ({"epochs_student": -1}, r"config key 'epochs_student': impossible value -1"),
    ({"prune_sparsity": 1.0}, r"config key 'prune_sparsity': impossible value 1.0"),
    ({"kd_alpha": 1.5}, r"config key 'kd_alpha': impossible value"),
    ({"split": "random"}, r"config key 'split': must be one of auto, block, group, stratified"),
    ({"teachers": ["resnet-9000"]}, r"unknown teacher 'resnet-9000'"),
    ({"teachers": [{"name": "x", "colour": 1}]}, r"unknown config key 'teachers\[0\].colour'"),
    ({"slurm": {"gpu": 1}}, r"unknown config key 'slurm.gpu'"),
    ({"slurm": {"time": "2h"}}, r"config key 'slurm.time': expected int"),
    ({"slurm": {"cpus": 0}}, r"config key 'slurm.cpus': impossible value 0"),
    ({"slurm": {"sbatch": {"exclude": ["a", "b"]}}}, r"config key 'slurm.sbatch.exclude': expected an sbatch option"),
    ({"sweep": {"slurm": [{}]}}, r"'slurm' cannot be swept"),
])
def test_bad_values_name_the_key(values, message):
    with pytest.raises(KDError, match=message):
        from_dict(values)


def test_bad_files(tmp_path, kd):
    with pytest.raises(KDError, match=r"params file not found: .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("epochs_teacher: [1\n")
    with pytest.raises(KDError, match=r"bad\.yaml: not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("epochs_techer: 3\n")
    code, _, err = kd("run", "--teacher", "resnet-18", "--params", tmp_path / "typo.yaml")
    assert code == 2 and "typo.yaml: unknown config key 'epochs_techer'" in err


def test_one_rule_for_what_shapes_results(tmp_path):
    """Where results are written changes no digest; any other setting changes the study's digest,
    the stage digests that read it, and the comparison's check that runs share their config."""
    from kdcore.study.config import result_settings
    from kdcore.study.scheduler import plan, stage_digest

    base = load_config(None, teachers=["resnet-18"], seeds=[1])
    moved = load_config(None, teachers=["resnet-18"], seeds=[1], output=str(tmp_path), cache_dir=str(tmp_path))
    changed = load_config(None, teachers=["resnet-18"], seeds=[1], kd_temperature=2.0)
    assert result_settings(base.to_dict()) == result_settings(moved.to_dict()) != result_settings(changed.to_dict())
    assert base.digest() == moved.digest() != changed.digest()
    reached = []
    for a, b, c in zip(plan(base), plan(moved), plan(changed), strict=True):
        assert stage_digest(base, a) == stage_digest(moved, b)
        assert (stage_digest(base, a) != stage_digest(changed, c)) == ("kd_temperature" not in a.step.ignores)
        reached += [a.notebook] if stage_digest(base, a) != stage_digest(changed, c) else []
    assert reached == ["02_student", "03_compress", "04_compare"]  # a temperature cannot reach data or teacher


def test_where_stages_run_on_a_cluster_shapes_no_result(tmp_path):
    """The slurm: block says what each job asks for, never what it computes: no digest reads it."""
    (tmp_path / "p.yaml").write_text("teachers: [resnet-18]\nslurm: {partition: gpu, gpus: 1}\n")
    cfg = load_config(tmp_path / "p.yaml")
    assert (cfg.slurm.partition, cfg.slurm.gpus, cfg.slurm.time) == ("gpu", 1, 240)
    assert cfg.digest() == load_config(tmp_path / "p.yaml", slurm={"partition": "other"}).digest()


def test_only_training_stages_ask_for_gpus_and_node_features():
    from kdcore.study.config import SlurmConfig
    from kdcore.study.slurm import request, sbatch_flags, settings

    cfg = settings(SlurmConfig(partition="gpu", cpu_partition="cpu", gpus=2, constraint="a100", mem_gb=1.5,
                               sbatch={"exclude": "node17", "requeue": True}), gpus=1, account=None)
    train, other = request(cfg, True, "kd:x"), request(cfg, False, "kd:y")
    assert (train["partition"], train["gpus_per_node"], train["constraint"]) == ("gpu", 1, "a100")
    assert other["partition"] == "cpu" and "gpus_per_node" not in other and "constraint" not in other
    assert "account" not in train  # unset: the cluster's default
    assert sbatch_flags(other) == ["--job-name=kd:y", "--time=240", "--partition=cpu", "--mem=1536M",
                                   "--exclude=node17", "--requeue"]
