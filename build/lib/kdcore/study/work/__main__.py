"""``torchrun --nproc_per_node N -m kdcore.study.work --params P --teacher T --seed S``: one
teacher's steps for one seed with data-parallel training (the notebooks run one process each)."""

import argparse

from kdcore.study.config import load_config
from kdcore.study.work.run import run_teacher_steps
from kdcore.training.loop import init_distributed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kdcore.study.work")
    parser.add_argument("--params", required=True)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    init_distributed()
    run_teacher_steps(load_config(args.params), args.teacher, args.seed)


if __name__ == "__main__":
    main()
