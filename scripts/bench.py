"""Cost of each regulariser: training-step time over the `reg=none` step time, measured in one run.

Usage: python scripts/bench.py [--steps 30] [--repeats 5] [--device auto] [--only drit]
Every configuration is built once; then timing rounds interleave them (each round times `--steps`
steps of every configuration), and a configuration's time is its median round, so drift of the
machine (thermal, other load) hits all alike. Prints one table per model and the machine it ran on.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from msgan_cli.config import compose_config
from msgan_cli.errors import UserError
from msgan_cli.train.runner import StepRunner
from msgan_cli.train.stats import collect

SETUPS = {
    "dcgan on digits (default run)": ["model=dcgan", "dataset=digits"],
    "2D GAN on grid25 (PacGAN setup)": ["model=mlp", "dataset=grid25"],
    "pix2pix on outline_fill (32 px, batch 8)": ["model=pix2pix", "dataset=outline_fill", "trainer.batch_size=8"],
    # 30 steps are 10 cycles of d_iter 3 (content D every step, the full update every third)
    "drit on outline_fill_unpaired (32 px, batch 8, default run)": ["model=drit"],
    "stackganpp on shape_captions (2 stages, 16 and 32 px, batch 24, default run)": ["model=stackganpp"],
    # 30 steps are 6 cycles of n_critic 5 (D every step, G every fifth); the diversity regularisers need the latent
    "stargan on shape_domains (32 px, batch 16, default run: no latent)": ["model=stargan"],
    "stargan + latent (model.nz=8) on shape_domains (32 px, batch 16)": ["model=stargan", "model.nz=8"],
}
METHODS = {
    "none": ["reg=none"],
    "ms": ["reg=ms"],
    "ms (pair_batch=split)": ["reg=ms", "trainer.pair_batch=split"],
    "dsgan": ["reg=dsgan"],
    "dpm": ["reg=dpm"],
    "sn": ["reg=sn"],
    "sr": ["reg=sr"],
    "mdgan": ["reg=mdgan"],
    "mdgan (two_step)": ["reg=mdgan", "reg.mdgan.two_step=true"],
    "pacgan (m=2)": ["reg=pacgan"],
    "unrolled (k=5)": ["reg=unrolled"],
    "unrolled (k=5, first_order)": ["reg=unrolled", "reg.unrolled.first_order=true"],
    "ms + sr": ["reg=[ms,sr]"],
}


def seconds_per_step(runner: StepRunner, steps: int) -> float:
    runner.synchronize()
    start = time.perf_counter()
    runner.run(steps)
    runner.synchronize()
    collect()   # drop what the steps reported
    return (time.perf_counter() - start) / steps


def machine(device: str) -> str:
    if device != "cpu" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--only", default="", help="time only the setups whose name contains this (e.g. drit)")
    args = parser.parse_args()
    print(f"machine: {machine(args.device)}; {args.repeats} rounds of {args.steps} steps, median round\n")
    for setup, setup_overrides in SETUPS.items():
        if args.only not in setup:
            continue
        runners, refused = {}, {}
        for name, extra in METHODS.items():
            try:
                runners[name] = StepRunner(compose_config("train", setup_overrides + extra +
                                                          [f"hardware.device={args.device}"]))
            except UserError as error:   # a regulariser that does not apply to this model says why
                refused[name] = str(error)
        for runner in runners.values():
            seconds_per_step(runner, 3)   # warm-up: allocator, kernels, first SVDs
        rounds = {name: [] for name in runners}
        for _ in range(args.repeats):
            for name, runner in runners.items():
                rounds[name].append(seconds_per_step(runner, args.steps))
        base = statistics.median(rounds["none"])
        print(f"{setup}\n| reg | ms / step | x reg=none |\n|---|---|---|")
        for name, times in rounds.items():
            median = statistics.median(times)
            print(f"| {name} | {1000 * median:.2f} | {median / base:.2f} |")
        for name, reason in refused.items():
            print(f"| {name} | refused: {reason} | |")
        print()


if __name__ == "__main__":
    main()
