"""The subcommands behind `msgan`. `train` is a Hydra app (multirun, launchers, run directories);
`eval`, `sample` and `report` read `key=value` options through the same config machinery.

Each command imports the heavy libraries (torch, torchvision, torchmetrics: several seconds) it
needs itself, so `msgan report`, a mistyped option and `--help` answer at once.
"""
from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from msgan_cli.config import compose_config, nearest_existing, write_refusal
from msgan_cli.core.jsonfiles import last_record
from msgan_cli.core.run_files import RunFiles, run_folders
from msgan_cli.core.sweep_process import mark_sweep_process
from msgan_cli.errors import UserError

log = logging.getLogger("msgan")
TRAINING_CRASHED = False   # set when a run's exception leaves train_main: Hydra exits 1 for it and for its own errors


@hydra.main(config_path="pkg://msgan_cli.conf", config_name="train", version_base="1.3")
def train_main(cfg: DictConfig) -> list[float] | None:
    global TRAINING_CRASHED
    from msgan_cli.train.loop import train
    from msgan_cli.train.threads import set_threads

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    search = searching(hydra_cfg)
    try:
        if search:
            check_search_objectives(cfg.eval.objectives, hydra_cfg.sweeper.direction)
        set_threads(cfg.hardware.threads, hydra_cfg.get("launcher"))
        metrics = train(cfg, run_dir)
        objectives = search_objectives(cfg.eval.objectives, hydra_cfg.sweeper.direction, metrics) if search else None
    except UserError as error:
        to_log_file_only(logging.ERROR, str(error))   # train.log says why the run stopped; the terminal once
        # In a sweep, a stop the run recorded (see loop.train) lets the others go on; SweepStops ends
        # the sweep with status 2. One it could not record (its folder in use by another process, a
        # setting refused before training) stops the sweep as it stops a single run.
        if hydra_cfg.mode == RunMode.MULTIRUN and last_record(run_dir).get("stopped") == str(error):
            print(f"msgan train: run #{hydra_cfg.job.num} stopped: {error}", file=sys.stderr, flush=True)
            return None
        print(f"msgan train: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    except Exception:
        log.exception("The run crashed")   # the traceback goes to train.log too, not only the terminal
        TRAINING_CRASHED = True
        raise
    if metrics is not None:
        print_run_summary(run_dir, metrics)
    return objectives


def searching(hydra_cfg) -> bool:
    """Whether the sweep is a search (hydra/sweeper=optuna) that asks each run for its objectives."""
    return "optuna" in str(hydra_cfg.get("sweeper", {}).get("_target_", "")).lower()


def objective_directions(keys: list[str]) -> list[str]:
    from msgan_cli.report.columns import direction
    return ["maximize" if direction(key) == "higher" else "minimize" for key in keys]


def check_search_objectives(chosen, sweeper_direction) -> None:
    """Before a search's run trains: two objectives, each a metric with a better direction, and the
    sweeper's directions fitting theirs (a run would otherwise train, then hand Optuna the wrong way round)."""
    from msgan_cli.report.columns import direction
    given = sweeper_directions(sweeper_direction)
    if len(given) != 2:
        raise UserError(f"hydra.sweeper.direction={sweeper_direction}: a search of the diversity-quality frontier "
                        f"has two objectives, quality then diversity; give hydra.sweeper.direction=[maximize,maximize].")
    if chosen is None:
        return   # the plane the run's metrics declare: checked when they are known (search_objectives)
    if isinstance(chosen, str) or len(chosen) != 2:
        raise UserError(f"eval.objectives={chosen}: give two metrics, quality then diversity, e.g. "
                        f"eval.objectives=[modes_2d/high_quality,modes_2d/modes], or null for the frontier the metrics declare.")
    for key in chosen:
        if direction(str(key)) is None:
            raise UserError(f"eval.objectives: {key} is not a metric with a better direction; give keys of "
                            f"metrics.json marked ↑ or ↓ in msgan report, e.g. modes_2d/high_quality.")
    check_directions_fit([str(key) for key in chosen], given)


def sweeper_directions(sweeper_direction) -> list[str]:
    """hydra.sweeper.direction as a list of `maximize` / `minimize` (one value, or Optuna's StudyDirection
    names, which print as StudyDirection.MAXIMIZE)."""
    given = [sweeper_direction] if isinstance(sweeper_direction, str) else list(sweeper_direction)
    return [str(d).lower().rsplit(".", 1)[-1] for d in given]


def check_directions_fit(keys: list[str], given: list[str]) -> None:
    wanted = objective_directions(keys)
    if given != wanted:
        raise UserError(f"hydra.sweeper.direction=[{','.join(given)}] does not fit the objectives {', '.join(keys)}: "
                        f"give hydra.sweeper.direction=[{','.join(wanted)}].")


def search_objectives(chosen, sweeper_direction, metrics: dict[str, float] | None) -> list[float] | None:
    """What a search's run returns to the sweeper: the two metrics of eval.objectives, or of the first
    frontier its metrics declare (report/frontier.py), as the report plots them. None on other ranks."""
    if metrics is None:
        return None
    from msgan_cli.report.columns import ordered_metrics
    from msgan_cli.report.frontier import declared_planes
    if chosen is None:
        planes = declared_planes(ordered_metrics(set(metrics)))
        if not planes:
            raise UserError(f"eval.objectives=null, and no metric of this run declares a frontier ({', '.join(metrics)}): "
                            f"give eval.objectives=[quality,diversity] from these.")
        keys = [planes[0].quality, planes[0].diversity]
    else:
        keys = [str(key) for key in chosen]
    missing = [key for key in keys if key not in metrics]
    if missing:
        raise UserError(f"eval.objectives: the run computed no {missing[0]} (it has {', '.join(metrics)}); give two of "
                        f"these, or add the metric to eval.metrics.")
    check_directions_fit(keys, sweeper_directions(sweeper_direction))
    log.info("Objectives returned to the search: %s", ", ".join(f"{key}={metrics[key]:.4g}" for key in keys))
    return [float(metrics[key]) for key in keys]


class SweepProcess(Callback):
    """A parallel sweep stops cleanly: its process names itself for the runs it starts in its workers and
    ends at once on Ctrl-C or `kill`, and each run stops with a checkpoint when it is gone
    (core/sweep_process.py). Other launchers run each run in this process or as a job of its own."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if "joblib" in str(config.hydra.launcher.get("_target_", "")):
            mark_sweep_process()


class SweepStops(Callback):
    """Ends a sweep in which some runs stopped with a UserError (a refused option, missing data, a
    divergence) with a line per such run and exit status 2, once every run had its turn. A stopped run
    does not stop the sweep: the runs after it still start, and with the parallel launcher the run
    beside it is not killed. Hydra calls this in the process that launched the sweep, whichever the
    launcher; the runs' own processes record why they stopped in run_info.json (`loop.train`)."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.started = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        stopped = stopped_runs(sweep_dir, since=self.started)
        if stopped:
            runs = len(run_folders(sweep_dir))
            head = (f"{len(stopped)} of the sweep's {runs} runs stopped; the others ran to the end:" if runs > len(stopped)
                    else "every run of the sweep stopped:")
            lines = [f"  {run_dir}: {message}" for run_dir, message in stopped]
            print(f"msgan train: {head}", *lines, f"`msgan report {sweep_dir}` tables the runs that finished.",
                  sep="\n", file=sys.stderr)
            raise SystemExit(2)


CLOCK_SKEW_S = 60   # a cluster's nodes write the runs' files; their clocks may trail the launching host's


def stopped_runs(sweep_dir: Path, since: float) -> list[tuple[Path, str]]:
    """The runs under `sweep_dir` whose latest attempt stopped with a UserError after `since` (a
    sweep run again in its folder: only this time's stops)."""
    stopped = []
    for info in sorted(sweep_dir.rglob(RunFiles.RUN_INFO)):
        message = last_record(info.parent).get("stopped")
        if message is not None and info.stat().st_mtime >= since - CLOCK_SKEW_S:
            stopped.append((info.parent, message))
    return stopped


def to_log_file_only(level: int, message: str) -> None:
    """A record for the run's log files (Hydra's train.log) and not for the console, which the caller
    prints to itself."""
    record = log.makeRecord(log.name, level, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def print_run_summary(run_dir: Path, metrics: dict[str, float]) -> None:
    from msgan_cli.core.distributed import process_info
    if not process_info().is_main:
        return
    from msgan_cli.report.columns import PER_CLASS  # per-class values stay in metrics.json, not on the terminal
    shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if not PER_CLASS.search(k))
    files = RunFiles(run_dir)
    grids = sorted(files.samples.glob("final*.png"))   # final.png, or one per translation direction
    print(f"\nRun finished: {run_dir}\n"
          f"  metrics:     {run_dir / 'metrics.json'}  ({shown})\n"
          f"  samples:     {', '.join(map(str, grids)) or run_dir / 'samples'}\n"
          f"  checkpoint:  {run_dir / 'checkpoints' / 'last.pt'}\n"
          f"  TensorBoard: tensorboard --logdir {shlex.quote(str(RunFiles(run_dir).tensorboard))}", flush=True)


def check_writable(folder: Path, fix: str) -> None:
    """Stop before any work when `folder` (or, where it does not exist yet, the nearest folder above it)
    cannot be written to, rather than compute everything and fail on the write."""
    existing = nearest_existing(folder)
    if (refusal := write_refusal(existing)) is not None:
        raise UserError(f"{existing} cannot be written to ({refusal}): {fix}.")


def required_run_dir(cfg: DictConfig, command: str) -> Path:
    if OmegaConf.is_missing(cfg, "run"):
        raise UserError(f"msgan {command} needs run=DIR, the directory of a training run (it holds .hydra/ and checkpoints/).")
    run_dir = Path(cfg.run)
    RunFiles(run_dir).existing_config()
    return run_dir


def eval_command(overrides: list[str]) -> dict[str, float]:
    """`msgan eval run=DIR [metrics=[...]] [num_samples=N] [seed=S] [text_code=mean] [device=cpu]`: writes the run's
    metrics.json and, beside it, eval_protocol.json (what was measured and how)."""

    from msgan_cli.train.runlock import run_directory_lock

    cfg = compose_config("eval", overrides)
    run_dir = required_run_dir(cfg, "eval")
    check_writable(run_dir, "msgan eval writes metrics.json and eval_protocol.json there; copy the run to a "
                            "writable place and evaluate the copy")
    # The run's lock: a training process in the folder would otherwise have its intermediate checkpoint
    # evaluated into metrics.json, which then reads as the finished run's.
    with run_directory_lock(run_dir, "msgan eval"):
        return evaluate_saved_run(run_dir, cfg)


def evaluate_saved_run(run_dir: Path, cfg: DictConfig) -> dict[str, float]:
    from msgan_cli.core.jsonfiles import read_json, write_json
    from msgan_cli.evaluate import evaluate_run, merge_evaluation, resolve_metric_names
    from msgan_cli.train.session import load_trained_session

    session, step = load_trained_session(run_dir, cfg.device)
    options = session.cfg.eval
    for key in ("num_samples", "seed", "text_code"):
        if cfg.get(key) is not None:
            options[key] = cfg[key]
    names = resolve_metric_names(cfg.metrics if cfg.metrics is not None else options.metrics,
                                 session.recipe, session.data, options)
    metrics, protocol = evaluate_run(session, names, options, step)
    # Re-evaluating some metrics keeps the others' numbers (and how they were measured).
    files = RunFiles(run_dir)
    previous, previous_protocol = read_json(files.metrics), read_json(files.protocol)
    merged, merged_protocol = merge_evaluation(previous, previous_protocol, metrics, protocol)
    write_json(files.metrics, merged)
    write_json(files.protocol, merged_protocol)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    kept = sorted(set(merged) - set(metrics))
    print(f"Wrote {run_dir / 'metrics.json'} and {run_dir / 'eval_protocol.json'}"
          + (f" (kept from earlier evaluations: {', '.join(kept)})" if kept else ""))
    return metrics


def sample_command(overrides: list[str]) -> list[Path]:
    """`msgan sample run=DIR [n=N] [condition=C] [inputs=8] [columns=8] [seed=S] [format=grid|npz|images]`: n
    samples per condition (all classes, or class C), one PNG per condition with one latent per cell; for
    models conditioned on data (pix2pix) one PNG with a row per held-out input (the first `inputs`, or
    test input C): the input, its ground truth, then n outputs; for a model translating both ways
    (drit) one PNG per direction (or `direction=AtoB|BtoA`), the truth replaced by a real image of the
    other domain and the input translated with its attribute; for a model translating into several target
    domains (stargan) one PNG, a row per input: the input, then n outputs (3 by default; 1 without a
    latent) per target domain (or only `direction=to_<edit>`'s); a scatter plot for 2D data.
    `format=npz`: the same samples as arrays for other tools (torch-fidelity, clean-fid): `images`
    uint8 (N, H, W, C), with `labels` (class conditions, -1 for none) or `inputs` and `input_index`
    (input images), or `points` for 2D data. `format=images`: the same samples as one PNG each, in a
    folder (what folder-based FID tools read), named by sample, class or input."""
    import torch
    from torchvision.utils import save_image

    from msgan_cli.figures import scatter_figure
    from msgan_cli.sampling import evaluation_mode, latents_per_view, views_grid
    from msgan_cli.train.session import load_trained_session

    cfg = compose_config("sample", overrides)
    for key in ("n", "inputs", "columns"):
        if cfg[key] is not None and (not isinstance(cfg[key], int) or cfg[key] < 1):
            raise UserError(f"{key} must be a positive whole number; got {cfg[key]!r}.")
    if cfg.format not in ("grid", "npz", "images"):
        raise UserError(f"format must be grid (PNG grids), npz (arrays for other tools) or images (one PNG per "
                        f"sample); got {cfg.format!r}.")
    run_dir = required_run_dir(cfg, "sample")
    out_dir = Path(cfg.out) if cfg.out else RunFiles(run_dir).samples
    check_writable(out_dir, "give out=DIR, a folder msgan sample may write to")
    session, step = load_trained_session(run_dir, cfg.device)
    recipe, data, device = session.recipe, session.data, session.device
    generator = torch.Generator(device=device).manual_seed(int(cfg.seed))
    if recipe.conditions_come_from_data:
        directions = recipe.evaluation_directions(data)
        names = [direction.name for direction in directions]
        if cfg.direction is not None and cfg.direction not in names:
            raise UserError(f"direction={cfg.direction}: this run's model "
                            + (f"has the views {' and '.join(names)} (directions, stages or edits); pick one, or drop it "
                               f"for each." if names[0] else "has one view only: drop direction="))
        split = data.evaluation_split
        if cfg.condition is not None and not 0 <= int(cfg.condition) < len(split):
            raise UserError(f"condition must be the index of a held-out input, 0..{len(split) - 1}; got {cfg.condition}.")
        rows = [int(cfg.condition)] if cfg.condition is not None else list(range(min(int(cfg.inputs), len(split))))
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = f"sample-step{step}-" + (f"input{rows[0]}" if cfg.condition is not None else "inputs")
        # A model whose views sit side by side (StarGAN) draws as many latents per view as its grid shows:
        # without a latent, one output per input and view, whatever the format.
        z = recipe.sample_latent(latents_per_view(recipe, cfg.n) if recipe.views_side_by_side else int(cfg.n or 8),
                                 device, generator)
        if recipe.views_side_by_side and cfg.format == "grid":   # StarGAN: one grid, a block per target domain
            chosen = tuple(d for d in directions if cfg.direction is None or d.name == cfg.direction)
            path = out_dir / (stem + (f"-{cfg.direction}" if cfg.direction else "") + ".png")
            save_image(views_grid(recipe, chosen, torch.tensor(rows, device=device), z), path)
            print(path)
            return [path]
        written = []
        for direction in directions:
            if cfg.direction is not None and direction.name != cfg.direction:
                continue
            batch = direction.data.evaluation_split.batch(torch.tensor(rows, device=device))
            written += sample_inputs(cfg.format, recipe, direction, batch, rows, z,
                                     out_dir / (stem + (f"-{direction.name}" if direction.name else "")))
        return written
    if cfg.condition is not None and not recipe.conditional:
        raise UserError(f"condition={cfg.condition} given, but this run's model is unconditional: drop it.")
    if cfg.condition is not None and not 0 <= int(cfg.condition) < recipe.num_classes:
        raise UserError(f"condition must be a class index in 0..{recipe.num_classes - 1}; got {cfg.condition}.")
    out_dir.mkdir(parents=True, exist_ok=True)
    conditions = [int(cfg.condition)] if cfg.condition is not None else (
        list(range(recipe.num_classes)) if recipe.conditional else [None])
    n = int(cfg.n or 64)
    written, all_outputs, all_labels = [], [], []
    with evaluation_mode(recipe):
        for condition in conditions:
            z = recipe.sample_latent(n, device, generator)
            labels = None if condition is None else torch.full((n,), condition, device=device)
            outputs = recipe.generate_primary(z, labels).float()
            all_outputs.append(outputs)
            all_labels.append(torch.full((n,), -1 if condition is None else condition))
            if cfg.format != "grid":
                continue
            name = f"sample-step{step}" + ("" if condition is None else f"-class{condition}") + ".png"
            if data.kind == "points":
                real = data.test.batch(torch.arange(min(len(data.test), n), device=device)).samples
                save_image(scatter_figure(real, outputs), out_dir / name)
            else:
                save_image(outputs * 0.5 + 0.5, out_dir / name, nrow=int(cfg.columns), padding=2, pad_value=1.0)
            written.append(out_dir / name)
    if cfg.format == "images" and data.kind == "image":
        labels = torch.cat(all_labels).tolist()
        return write_images(out_dir / f"sample-step{step}", torch.cat(all_outputs),
                            [f"class{label}" if label >= 0 else "sample" for label in labels])
    if cfg.format != "grid":   # npz (2D points have no images to write one by one: npz too)
        outputs, labels = torch.cat(all_outputs), torch.cat(all_labels)
        arrays = {"points": outputs.cpu().numpy()} if data.kind == "points" else {"images": outputs}
        return [write_npz(out_dir / f"sample-step{step}.npz", labels=labels, **arrays)]
    print("\n".join(str(path) for path in written))
    return written


def sample_inputs(form: str, recipe, direction, batch, rows: list[int], z, stem: Path) -> list[Path]:
    """`msgan sample` for a model conditioned on data, in one direction: a grid (input, truth or
    reference and transfer, outputs), or the outputs as npz or one PNG each."""
    import torch
    from torchvision.utils import save_image

    from msgan_cli.core.batch import take
    from msgan_cli.sampling import evaluation_mode, input_grid

    if form == "grid":
        save_image(input_grid(recipe, direction, batch, z), stem.with_suffix(".png"))
        print(stem.with_suffix(".png"))
        return [stem.with_suffix(".png")]
    index = torch.arange(len(rows), device=z.device).repeat_interleave(len(z))
    condition = take(direction.condition(batch), index)
    with evaluation_mode(recipe):
        outputs = direction.generate(recipe, z.repeat(len(rows), 1), condition).float()
    input_index = torch.tensor(rows)[index.cpu()]
    if form == "images":
        return write_images(stem, outputs, [f"input{i}" for i in input_index.tolist()])
    return [write_npz(stem.with_suffix(".npz"), images=outputs, inputs=recipe.condition_image(condition),
                      input_index=input_index)]


def write_npz(path: Path, **arrays) -> Path:
    """Arrays as other tools read them: images (tensors in [-1, 1], N x C x H x W) as uint8 N x H x W x C."""
    import numpy as np
    import torch

    def as_array(value):
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() == 4:
            return ((value.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return value.cpu().numpy() if isinstance(value, torch.Tensor) else value

    np.savez_compressed(path, **{name: as_array(value) for name, value in arrays.items() if value is not None})
    print(path)
    return path


def write_images(folder: Path, images, names: list[str]) -> list[Path]:
    """One PNG per image (tensors in [-1, 1]) in `folder`, named `<number>-<name>.png`."""
    from torchvision.utils import save_image
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:05d}-{name}.png" for i, name in enumerate(names)]
    for image, path in zip(images, paths):
        save_image(image * 0.5 + 0.5, path)
    print(folder)
    return paths


def report_command(arguments: list[str]) -> Path:
    """`msgan report SWEEP_DIR [baseline=ROW] [interval=t|bootstrap] [confidence=0.95] [frontier=[x,y]] [columns=[...]]`: the
    sweep's tables (a row per method and setting, mean +- std and the interval of the mean over seeds, each
    method paired by seed with the baseline row, the diversity-quality frontier), written beside it as
    report.md, report.csv, report.png and report_frontier.png. Options may also be spelled `report.<key>=`."""
    from msgan_cli.report import FRONTIER_PLOT, ReportOptions, build_report
    from msgan_cli.report.statistics import IntervalOptions

    if not arguments or "=" in arguments[0]:
        raise UserError("Usage: msgan report SWEEP_DIR [key=value ...]  (a multirun folder, e.g. "
                        "multirun/2026-11-23/12-00-00; msgan report --help lists the options).")
    cfg = compose_config("report", [option.removeprefix("report.") for option in arguments[1:]])
    try:
        intervals = IntervalOptions(str(cfg.interval), float(cfg.confidence), int(cfg.bootstrap_resamples),
                                    int(cfg.bootstrap_seed))
    except (ValueError, TypeError) as error:
        raise UserError(f"{error}.") from None
    frontier = cfg.frontier
    if frontier is not None and (isinstance(frontier, str) or len(frontier) != 2):
        raise UserError(f"frontier={frontier}: give two metrics, quality then diversity, e.g. "
                        f"frontier=[modes_2d/high_quality,modes_2d/modes].")
    columns = cfg.columns
    if columns is not None and (isinstance(columns, str) or not columns):
        raise UserError(f"columns={columns}: give a list of metrics, e.g. columns=[modes_2d/modes,modes_2d/high_quality].")
    options = ReportOptions(str(cfg.baseline), intervals, None if frontier is None else tuple(map(str, frontier)),
                            None if columns is None else tuple(map(str, columns)))
    markdown_path, text = build_report(Path(arguments[0]), options)
    print(text)
    written = [markdown_path.with_suffix(suffix) for suffix in (".md", ".csv", ".png")]
    frontier_plot = markdown_path.parent / FRONTIER_PLOT
    written += [frontier_plot] if frontier_plot.exists() else []
    print(f"Wrote {', '.join(map(str, written[:-1]))} and {written[-1]}")
    return markdown_path


def train_classifier_command(overrides: list[str]) -> tuple[Path, float]:
    """`msgan train-classifier dataset=NAME [eval.classifier.steps=...] [hardware=cpu]`: trains (or finds
    in the cache) the classifier the metrics use for a dataset, and prints its test accuracy. For a
    stacked dataset it is the classifier of the single channels (what stacked_modes uses)."""
    from msgan_cli.core.distributed import process_info
    from msgan_cli.data import load_dataset
    from msgan_cli.metrics.classification import channel_data, is_stacked
    from msgan_cli.metrics.classifier import cache_path, load_or_train_classifier
    from msgan_cli.train.session import select_device

    cfg = compose_config("train", overrides)
    device = select_device(cfg.hardware, process_info())
    data = load_dataset(cfg.dataset).to(device)
    if is_stacked(data):
        data = channel_data(data)
    if data.kind != "image" or data.label_kind != "class":
        raise UserError(f"Dataset {data.name} has no class labels to train a classifier on.")
    path = cache_path(data, cfg.dataset, cfg.eval.classifier, device)
    _, accuracy = load_or_train_classifier(data, cfg.dataset, cfg.eval.classifier, device)
    print(f"{data.name} classifier: test accuracy {accuracy:.4f}\n  {path}")
    return path, accuracy
