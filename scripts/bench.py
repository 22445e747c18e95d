"""Cost of each regulariser: training-step time over the `reg=none` step time, measured in one run;
and the engine's own cost: msgan's `reg=none` step over a bare step of the same networks and losses.

Usage: python scripts/bench.py [--steps 30] [--repeats 5] [--device auto] [--only drit] [--compile]
       python scripts/bench.py --eval [--device auto]: the time to generate and score 10,000 samples
       python scripts/bench.py --data [--device auto] [dataset=cub dataset.root=DIR ...]: the streamed data
       pipeline's images per second against what the model that trains on it consumes per step
       (default: the four folder datasets, synthetic, in their real formats at the papers' sizes)
Every configuration is built once; then timing rounds interleave them (each round times `--steps`
steps of every configuration), and a configuration's time is its median round, so drift of the
machine (thermal, other load) hits all alike. Prints one table per model and the machine it ran on.
The rows are `reg=none` and every setting of every registered regulariser (`regularizers.settings`),
so a new regulariser is timed on every model, as a ratio over that model's `reg=none`, without an edit here.

The bare step (DCGAN, the 2D GAN, Pix2Pix) is the textbook loop written out here: the recipe's own
networks, optimisers, batches and GAN-loss functions, called directly, with no step context, phases,
plug-ins, statistics or divergence record. It trains its own copy of the networks.
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from msgan_cli.config import compose_config, selected_regularizers
from msgan_cli.core.stats import collect
from msgan_cli.data import EpochSampler
from msgan_cli.data.base import BatchSource
from msgan_cli.data.files import image_files
from msgan_cli.errors import UserError
from msgan_cli.evaluate import evaluate_run
from msgan_cli.models.base import one_hot
from msgan_cli.models.pix2pix.networks import downsample
from msgan_cli.regularizers import REGULARIZERS, settings
from msgan_cli.train.runner import StepRunner
from msgan_cli.train.session import build_session
from msgan_cli.train.threads import cores

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from datafiles import write_celeba, write_cub, write_paired_folder, write_unpaired_folder  # noqa: E402 (the tests' writers)

DCGAN, GAN_2D, PIX2PIX = ("dcgan on digits (default run)", "2D GAN on grid25 (PacGAN setup)",
                          "pix2pix on outline_fill (32 px, batch 8)")
ENGINE_OVERHEAD_GOALS = {DCGAN: 1.10, GAN_2D: 1.25, PIX2PIX: 1.10}   # msgan's reg=none step over the bare step
SETUPS = {
    DCGAN: ["model=dcgan", "dataset=digits"],
    GAN_2D: ["model=mlp", "dataset=grid25"],
    PIX2PIX: ["model=pix2pix", "dataset=outline_fill", "trainer.batch_size=8"],
    # 30 steps are 10 cycles of d_iter 3 (content D every step, the full update every third)
    "drit on outline_fill_unpaired (32 px, batch 8, default run)": ["model=drit"],
    "stackganpp on shape_captions (2 stages, 16 and 32 px, batch 24, default run)": ["model=stackganpp"],
    # 30 steps are 6 cycles of n_critic 5 (D every step, G every fifth); the diversity regularisers need the latent
    "stargan on shape_domains (32 px, batch 16, default run: no latent)": ["model=stargan"],
    "stargan + latent (model.nz=8) on shape_domains (32 px, batch 16)": ["model=stargan", "model.nz=8"],
}
BARE = "bare step (no engine)"
# reg=none, then every setting of every registered regulariser (regularizers.settings: a regulariser that asks
# for pairs in both layouts, the models' default being doubled and StackGAN++'s split; each of its `variants`),
# at its own defaults: a new regulariser gets its rows without an edit here. A model it refuses prints why.
# Last, one composition: whether two regularisers' costs simply add up.
METHODS = ({"none": ["reg=none"]} | {label: overrides for name in sorted(REGULARIZERS)
                                     for label, overrides in settings(name).items()}
           | {"ms + sr": ["reg=[ms,sr]"]})
COMPILED = {"none (hardware.compile)": ["reg=none", "hardware.compile=true"]}   # --compile: a minute or more each
COMPILED_ON_CUDA = {"none (hardware.compile, reduce-overhead: CUDA graphs)": [
    "reg=none", "hardware.compile=true", "hardware.compile_mode=reduce-overhead"]}
ON_CUDA = {"none (hardware.amp: bf16)": ["reg=none", "hardware.amp=true"],
           "none (amp + channels_last)": ["reg=none", "hardware.amp=true", "hardware.channels_last=true"]}


def seconds_per_step(runner: StepRunner | BareRunner, steps: int) -> float:
    runner.synchronize()
    start = time.perf_counter()
    runner.run(steps)
    runner.synchronize()
    collect()   # drop what the steps reported
    return (time.perf_counter() - start) / steps


class BareStep:
    """What the engine's `reg=none` step computes for an adversarial recipe, written directly: the
    recipe's networks and its GAN loss's plain functions, without the step context or the loop."""

    def __init__(self, runner: StepRunner):
        self.runner, recipe = runner, runner.session.recipe
        self.generator, self.nz, self.gan_loss = recipe.generator, recipe.latent_dim, recipe.gan_loss
        self.discriminators = [getattr(recipe, name) for name in recipe.discriminator_names]
        self.num_classes = getattr(recipe, "num_classes", 0)
        self.pix2pix, self.lambda_l1 = recipe.name == "pix2pix", recipe.cfg.get("lambda_l1", 0.0)
        if self.gan_loss.flavour == "wgan-gp":
            raise ValueError("the bare step does not write out WGAN-GP's gradient penalty")

    def logits(self, x: torch.Tensor, condition: torch.Tensor | None) -> list[torch.Tensor]:
        if not self.pix2pix:
            return [self.discriminators[0](x, condition)]
        pair = torch.cat([condition, x], 1)   # Pix2Pix: the (input, output) pair, and its half-size view
        return [d(view) for d, view in zip(self.discriminators, (pair, downsample(pair)))]

    def step(self) -> None:
        optimizers, device = self.runner.optimizers, self.runner.session.device
        batch = self.runner.source.next(device)
        real = batch.samples
        z = torch.randn(len(real), self.nz, device=device)
        if self.pix2pix:
            condition = batch.inputs
            fake = self.generator(condition, z)
        else:
            condition = one_hot(batch.labels, self.num_classes, z)
            fake = self.generator(z, condition)

        def update_generator():
            optimizers["generator"].zero_grad(set_to_none=True)
            loss = self.gan_loss.generator(self.logits(fake, condition))
            if self.pix2pix:
                loss = loss + self.lambda_l1 * (fake - real).abs().mean()
            loss.backward()
            optimizers["generator"].step()

        def update_discriminator():
            optimizers["discriminator"].zero_grad(set_to_none=True)
            loss = self.gan_loss.discriminator(self.logits(real, condition), self.logits(fake.detach(), condition))
            loss.backward()
            optimizers["discriminator"].step()

        for update in ((update_generator, update_discriminator) if self.pix2pix   # the recipes' orders
                       else (update_discriminator, update_generator)):
            update()


class BareRunner:
    """A bare step with the interface `seconds_per_step` times."""

    def __init__(self, runner: StepRunner):
        self.bare, self.synchronize = BareStep(runner), runner.synchronize

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.bare.step()


EVALUATION_GOAL_S = 60.0   # 10,000 samples generated and scored (NDB K=100, FID) on 2 CPU cores


def time_evaluation(device: str, samples: int = 10_000) -> None:
    """The default run's evaluation of `samples` samples, whole and metric by metric, after one
    evaluation that brings the classifier (trained once, then read from its cache) into play."""
    cfg = compose_config("train", [f"eval.num_samples={samples}", "eval.ndb.bins=100", "eval.extractor.name=classifier",
                                   f"hardware.device={device}"])
    session = build_session(cfg)
    cold = time.perf_counter()
    evaluate_run(session, ["class_acc"], cfg.eval)   # the classifier: trained on a cold cache, else loaded
    cold = time.perf_counter() - cold
    print(f"default run (dcgan on digits), {samples:,} samples; the classifier took {cold:.1f} s to bring in "
          f"(trained when not cached)\n| metrics | seconds |\n|---|---|")
    # Each row generates and extracts its own samples, so a metric's own cost is its row less fid's (the
    # same generation and one extractor pass): vendi (a 64 x 64 eigenproblem in the dual form), rke (a
    # 10,000^2 Gaussian kernel summed in blocks, outputs and real data) and density_coverage (k-NN radii).
    for metrics in (["ndb_jsd"], ["fid"], ["ndb_jsd", "fid"], ["vendi"], ["rke"], ["density_coverage"],
                    ["fid", "vendi", "rke", "density_coverage"]):
        start = time.perf_counter()
        evaluate_run(session, metrics, cfg.eval)
        print(f"| {' + '.join(metrics)} | {time.perf_counter() - start:.1f} |")
    print(f"\ngoal: generating and scoring with NDB (K=100) and FID within {EVALUATION_GOAL_S:.0f} s on 2 CPU cores\n")


# The streamed folder datasets as the papers train on them: the model that trains on each, with the
# paper's image size, network width and batch (a user's options on the command line win). `--data`
# alone writes SYNTHETIC_COUNT photo-like files of each in its real format and image size
# (tests/datafiles.py) and measures all four.
PAPER_DATA = {
    "paired_folder": ["model=pix2pix", "dataset.resolution=256", "dataset.load_size=286", "model.width=64",
                      "trainer.batch_size=1"],                                      # facades / maps: BicycleGAN's
    "unpaired_folder": ["model=drit", "model.width=64", "trainer.batch_size=2"],     # cat2dog: resize 256, crop 216
    "cub": ["model=stackganpp", "model.stages=3", "model.base_size=64", "model.width_g=64", "model.width_d=64",
            "trainer.batch_size=24"],                                               # birds_3stages: 304 -> 256
    "celeba": ["model=stargan", "dataset.resolution=128", "model.width_g=64", "model.width_d=64",
               "trainer.batch_size=16"],                                            # crop 178, resize 128
}
SYNTHETIC_COUNT = 128
DATA_BATCHES = 40   # batches of 8 timed per worker count (fewer: a new worker's start-up shows)


def write_synthetic(dataset: str, root: Path, count: int) -> tuple[str, list[str]]:
    """`count` photo-like training images of `dataset` in its real format and size under root: what
    they are, and the options that read them."""
    if dataset == "paired_folder":
        write_paired_folder(root, {"train": count, "test": 1}, height=256, textured=True)
        return f"{count} JPEG pairs of 2 x 256 x 256 (pix2pix's format), resized to 286, cropped to 256, flipped", []
    if dataset == "unpaired_folder":
        write_unpaired_folder(root, {"trainA": count, "trainB": count, "testA": 1, "testB": 1}, size=256, textured=True)
        return f"{count} JPEGs of 256 x 256 per domain (DRIT's format), resized to 256, cropped to 216, flipped", []
    if dataset == "cub":
        write_cub(root, {"train": count, "test": 1}, dim=1024, image_size=(375, 500), textured=True)
        return (f"{count} JPEGs of 500 x 375 (CUB's size), cropped to their bird's box, resized to 304, cropped to "
                f"256, flipped", [])
    write_celeba(root, count + 1, textured=True)
    return (f"{count} JPEGs of 178 x 218 (CelebA's aligned faces), centre crop 178, resized to 128, flipped",
            ["dataset.test_images=1"])


def time_decoders(files: list[Path]) -> None:
    """ms per image to decode `files` to RGB pixels with PIL (what the loaders use) and with
    torchvision.io (libjpeg-turbo on tensors), and whether both give the same pixels."""
    from torchvision.io import ImageReadMode, decode_image, read_file

    def with_pil(path):
        with Image.open(path) as image:
            return torch.from_numpy(np.asarray(image.convert("RGB")).transpose(2, 0, 1).copy())

    def with_torchvision(path):
        return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)

    timings = {}
    for name, decode in (("PIL", with_pil), ("torchvision.io", with_torchvision)):
        decode(files[0])
        start = time.perf_counter()
        decoded = [decode(path) for path in files]
        timings[name] = (1000 * (time.perf_counter() - start) / len(files), decoded)
    same = all(torch.equal(a, b) for a, b in zip(timings["PIL"][1], timings["torchvision.io"][1]))
    print(f"decoding alone, {len(files)} files, one thread: PIL {timings['PIL'][0]:.2f} ms / image, torchvision.io "
          f"{timings['torchvision.io'][0]:.2f} ms / image; the same pixels: {'yes' if same else 'no'}")


class RepeatedBatch(BatchSource):
    """One decoded batch, handed out again and again: the model's step without any data cost."""

    def __init__(self, batch):
        self.batch = batch

    def next(self, device):
        return self.batch

    def state_dict(self) -> dict[str, int]:
        return {}

    def load_state_dict(self, state: dict[str, int]) -> None:
        pass


def time_data_pipeline(device: str, overrides: list[str], steps: int) -> None:
    """Images per second decoded and augmented by 0..min(cores, 8) DataLoader workers (streamed, as a
    folder too large for memory is), then the images per second the model that trains on the dataset
    consumes (its step on one batch repeated, so without data cost) and the workers it needs to keep
    up. `overrides`: a user's streamed dataset (`dataset=cub dataset.root=...`, with the model's
    options); none: the four folder datasets, synthetic, at the papers' sizes (PAPER_DATA)."""
    if overrides:
        dataset = compose_config("train", overrides).dataset.name
        if dataset not in PAPER_DATA:
            raise SystemExit(f"--data measures the streamed folder datasets ({', '.join(PAPER_DATA)}); got {dataset}.")
        time_dataset(device, dataset, PAPER_DATA[dataset] + overrides, steps)   # the user's options win
        return
    for dataset, options in PAPER_DATA.items():
        with tempfile.TemporaryDirectory() as folder:
            what, reading = write_synthetic(dataset, Path(folder), SYNTHETIC_COUNT)
            print(what)
            time_dataset(device, dataset, [*options, f"dataset={dataset}", f"dataset.root={folder}", *reading], steps)


def time_dataset(device: str, dataset: str, overrides: list[str], steps: int) -> None:
    """The tables of `time_data_pipeline` for one dataset; `overrides` start with model=..."""
    common = [*overrides, f"hardware.device={device}", "dataset.in_memory=false"]
    runner = StepRunner(compose_config("train", common + ["dataset.workers=0"]))   # the model's default reg
    time_decoders(image_files(Path(runner.session.cfg.dataset.root))[:32])
    print(f"{dataset}, streamed (dataset.in_memory=false), batches of 8\n"
          f"| DataLoader workers | images / s | per worker |\n|---|---|---|")
    per_worker = []
    for workers in range(0, min(cores(), 8) + 1):
        session = build_session(compose_config("train", common + [f"dataset.workers={workers}"]))
        source = session.data.train.source(EpochSampler(len(session.data.train), 8, 0), 0)
        source.next(session.device)   # the workers' start-up
        start = time.perf_counter()
        for _ in range(DATA_BATCHES):
            source.next(session.device)
        rate = DATA_BATCHES * 8 / (time.perf_counter() - start)
        per_worker.append(rate / max(workers, 1))
        print(f"| {workers} | {rate:.0f} | {rate / max(workers, 1):.0f} |")
    model = overrides[0].removeprefix("model=")
    batch_size = runner.session.cfg.trainer.batch_size
    regularizers = "+".join(name for name, _ in selected_regularizers(runner.session.cfg)) or "none"
    runner.source = RepeatedBatch(runner.source.next(runner.session.device))
    cycle = math.lcm(*(phase.every for phase in runner.phases))   # DRIT's d_iter 3, StarGAN's n_critic 5: every phase
    seconds_per_step(runner, cycle)
    seconds = seconds_per_step(runner, steps * cycle)
    consumed = batch_size / seconds
    slowest_worker = min(per_worker[1:] or per_worker)
    print(f"\nmodel={model} (reg={regularizers}, batch {batch_size}) on one batch repeated: {1000 * seconds:.0f} ms / step, "
          f"{consumed:.1f} images / s consumed: {math.ceil(consumed / slowest_worker)} worker(s) at "
          f"{slowest_worker:.0f} images / s each keep up\n")


def machine(device: str) -> str:
    if device != "cpu" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="steps per round (30); with --data: the model's "
                                                                "step cycles timed (3)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--only", default="", help="time only the setups whose name contains this (e.g. drit)")
    parser.add_argument("--eval", action="store_true", help="time the evaluation of 10,000 samples instead")
    parser.add_argument("--compile", action="store_true", help="also time reg=none with hardware.compile=true")
    parser.add_argument("--data", action="store_true", help="time the streamed data pipeline instead")
    parser.add_argument("overrides", nargs="*", help="with --data: a streamed dataset, e.g. dataset=cub "
                                                      "dataset.root=DIR (default: the four, synthetic)")
    args = parser.parse_args()
    if args.overrides and not args.data:
        parser.error(f"options such as {args.overrides[0]} go with --data only")
    if args.eval or args.data:
        print(f"machine: {machine(args.device)}\n")
        try:
            if args.eval:
                time_evaluation(args.device)
            else:
                time_data_pipeline(args.device, args.overrides, args.steps or 3)
        except UserError as error:   # e.g. no data where dataset.root points
            raise SystemExit(f"bench.py: {error}") from None
        return
    print(f"machine: {machine(args.device)}; {args.repeats} rounds of {args.steps or 30} steps, median round\n")
    on_cuda = args.device != "cpu" and torch.cuda.is_available()
    for setup, setup_overrides in SETUPS.items():
        if args.only not in setup:
            continue
        runners, refused = {}, {}
        methods = (METHODS | (COMPILED if args.compile else {}) | (ON_CUDA if on_cuda else {})
                   | (COMPILED_ON_CUDA if args.compile and on_cuda else {}))
        for name, extra in methods.items():
            try:
                runners[name] = StepRunner(compose_config("train", setup_overrides + extra +
                                                          [f"hardware.device={args.device}"]))
            except UserError as error:   # a regulariser that does not apply to this model says why
                refused[name] = str(error)
        if setup in ENGINE_OVERHEAD_GOALS:
            runners[BARE] = BareRunner(StepRunner(compose_config("train", setup_overrides + [
                "reg=none", f"hardware.device={args.device}"])))
        batch_size = runners["none"].session.cfg.trainer.batch_size
        for runner in runners.values():
            seconds_per_step(runner, 3)   # warm-up: allocator, kernels, first SVDs
        rounds = {name: [] for name in runners}
        for _ in range(args.repeats):
            for name, runner in runners.items():
                rounds[name].append(seconds_per_step(runner, args.steps or 30))
        base = statistics.median(rounds["none"])
        print(f"{setup}\n| reg | ms / step | x reg=none | images / s |\n|---|---|---|---|")
        for name, times in rounds.items():
            median = statistics.median(times)
            print(f"| {name} | {1000 * median:.2f} | {median / base:.2f} | {batch_size / median:.0f} |")
        for name, reason in refused.items():
            print(f"| {name} | refused: {reason} | | |")
        if BARE in rounds:
            overhead = base / statistics.median(rounds[BARE])
            print(f"\nengine overhead: msgan's reg=none step / the bare step = {overhead:.2f} "
                  f"(goal: at most {ENGINE_OVERHEAD_GOALS[setup]:.2f})")
        print()


if __name__ == "__main__":
    main()
