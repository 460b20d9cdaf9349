"""``torchrun --nproc_per_node N -m kdcore.pipeline --params P --teacher T --seed S``: one
teacher's pipeline with data-parallel training (the notebooks run one process each)."""

import argparse

from kdcore.config import load_config
from kdcore.pipeline import run_teacher_pipeline
from kdcore.train import init_distributed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kdcore.pipeline")
    parser.add_argument("--params", required=True)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    init_distributed()
    run_teacher_pipeline(load_config(args.params), args.teacher, args.seed)


if __name__ == "__main__":
    main()
