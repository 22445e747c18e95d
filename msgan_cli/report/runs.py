"""The runs of a sweep as `msgan report` tables them: which finished (and why the others are left
out), where each sits (table, method, the overrides that vary, seed), and the rows they form."""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from msgan_cli.config import flat, load_saved_config, method_label, selected_regularizers
from msgan_cli.core.jsonfiles import last_attempt, last_record, read_json
from msgan_cli.core.run_files import SWEEP_RECORD, RunFiles, run_folders


@dataclass
class Run:
    """One finished run: where it sits in the report and its metrics."""

    path: Path
    table: tuple[str, str]       # (dataset, model)
    method: str                  # e.g. "none", "ms(w=1)", "ms(w=1)+sr(w=0.5)"
    family: str                  # the regularisers without weights, e.g. "ms" or "ms+sr" or "none"
    weight: float | None         # the weight when one regulariser is selected
    seed: int
    settings: dict[str, str]     # the run's other overrides that apply to it (see `run_settings`)
    metrics: dict[str, float]
    place: str | None
    config: dict[str, str] = field(default_factory=dict)   # see `comparable_config`


@dataclass
class Group:
    """One row of a table: the runs of one method with one setting of the overrides that vary, by seed."""

    family: str
    weight: float | None
    settings: tuple[tuple[str, str], ...]   # (key, value) of the table's varying keys ("-": not set)
    runs: dict[int, list[Run]] = field(default_factory=lambda: defaultdict(list))

    @property
    def label(self) -> str:
        return self.runs[next(iter(self.runs))][0].method

    @property
    def name(self) -> str:
        """The row as the report names it in sentences: its label and its values of the varying keys."""
        return " ".join([self.label, *(f"{k}={v}" for k, v in self.settings)])

    @property
    def family_name(self) -> str:
        """The rows of one regulariser at every weight, with these values of the varying keys (a plot's curve)."""
        return " ".join([self.family, *(f"{k}={v}" for k, v in self.settings)])

    def is_named(self, name: str) -> bool:
        """Whether `name` picks this row: its label as the table prints it (`ms(w=1)`) or its regulariser (`ms`)."""
        return name in (self.label, self.family)

    @property
    def seeds(self) -> list[int]:
        return sorted(self.runs)

    @property
    def places(self) -> set[str]:
        return {run.place for runs in self.runs.values() for run in runs if run.place}

    @property
    def by_seed(self) -> dict[str, dict[int, float]]:
        """Per metric, {seed: value}: the mean of that seed's runs (several runs of one seed in one row are
        the same configuration run again, e.g. reg=none under a swept ms weight). Keyed by seed so that
        two rows pair by seed even where a run lacks a metric."""
        per_metric = defaultdict(dict)
        for seed in self.seeds:
            seed_values = defaultdict(list)
            for run in self.runs[seed]:
                for name, value in run.metrics.items():
                    seed_values[name].append(value)
            for name, values in seed_values.items():
                per_metric[name][seed] = sum(values) / len(values)
        return per_metric

    @property
    def values(self) -> dict[str, list[float]]:
        """Per metric, one value per seed that has it (see `by_seed`), in seed order."""
        return {name: list(values.values()) for name, values in self.by_seed.items()}

    def duplicates(self) -> dict[int, list[Path]]:
        return {seed: [run.path for run in runs] for seed, runs in self.runs.items() if len(runs) > 1}

    def config_differences(self) -> dict[str, list[str]]:
        """The keys whose resolved value is not the same in every run of the row, with the values seen:
        runs whose overrides agree can still differ, e.g. runs of two code versions whose defaults
        differ, and the row would average them without a word."""
        configs = [run.config for runs in self.runs.values() for run in runs]
        seen = {key: sorted({config.get(key, "(absent)") for config in configs})
                for key in sorted({key for config in configs for key in config})}
        return {key: values for key, values in seen.items() if len(values) > 1}


# How a run shows progress and uses the machine's cores, not what it computes (a thread count can move
# the last bits of a CPU reduction, as the machine itself can, whose name is in the "ran on" column).
DISPLAY_ONLY = {"trainer.progress_bar", "hardware.threads"}


def changes_no_number(key: str, enabled: set[str]) -> bool:
    """A config key that cannot make two runs' numbers differ: a DISPLAY_ONLY option, or an option of a
    regulariser the run does not use (a swept `reg.ms.weight` does not make `reg=none` runs differ)."""
    if key in DISPLAY_ONLY:
        return True
    return key.startswith("reg.") and key[len("reg."):].partition(".")[0] not in enabled


def run_settings(overrides: list, cfg) -> dict[str, str]:
    """The command-line overrides Hydra recorded for the run (`.hydra/overrides.yaml`), except what the
    report shows elsewhere: the seed (the statistic's axis), the regulariser choice and weights (the
    method), the table's dataset and model, Hydra's own keys, options of regularisers the run does
    not use (a swept `reg.ms.weight` does not make `reg=none` runs differ) and options that change no
    number (DISPLAY_ONLY). A value is the run's resolved one where its config has the key, so
    `trainer.ema=1e-3` and `=0.001`, or `=False` (a multirun) and `=false` (a resumed job), are one."""
    enabled = {name for name, _ in selected_regularizers(cfg)}
    settings = {}
    for override in overrides:
        key, _, value = str(override).lstrip("+~").partition("=")
        if key in ("seed", "reg", "dataset", "model") or key.startswith(("hydra.", "hydra/")):
            continue
        if changes_no_number(key, enabled) or (key.startswith("reg.") and key.endswith(".weight")):
            continue   # a weight is part of the method's label
        resolved = OmegaConf.select(cfg, key, default=None)
        settings[key] = value if resolved is None or OmegaConf.is_config(resolved) else str(resolved)
    return settings


def comparable_config(cfg) -> dict[str, str]:
    """The run's config as flat `key: value` text, without what the row does not hold fixed: the seed,
    options that change no number (DISPLAY_ONLY), and options of regularisers the run does not use."""
    enabled = {name for name, _ in selected_regularizers(cfg)}
    flat_config = flat(OmegaConf.to_container(cfg, resolve=False))
    return {key: str(value) for key, value in flat_config.items() if key != "seed" and not changes_no_number(key, enabled)}


def collect_runs(sweep_dir: Path) -> tuple[list[Run], list[tuple[Path, str]]]:
    """Every finished run under `sweep_dir`, and the runs left out of the tables with the reason: no metrics
    (see `run_status`), metrics of a step before the run's budget, or a config that cannot be read."""
    runs, left_out = [], []
    for run_dir in run_folders(sweep_dir):
        files = RunFiles(run_dir)
        try:
            cfg = load_saved_config(files.config)
            budget = OmegaConf.select(cfg, "trainer.max_steps")   # None in a config written by hand
            overrides = list(OmegaConf.load(files.overrides)) if files.overrides.exists() else []
        except Exception as error:   # a damaged file (cut short, binary): one run left out, not the whole report
            reason = str(error).strip().splitlines()[0][:120]
            left_out.append((run_dir, f"its .hydra/ files cannot be read ({type(error).__name__}: {reason})"))
            continue
        metrics = read_json(files.metrics)
        if not metrics:   # absent (diverged, failed or unfinished) or damaged
            left_out.append((run_dir, run_status(run_dir)))
            continue
        step = evaluated_step(files)
        if step is not None and budget is not None and step < int(budget):
            left_out.append((run_dir, f"unfinished: its metrics are of step {step} of its {budget} (evaluated while "
                                      f"it trained, or stopped early); train it to the end, then report it"))
            continue
        regs = selected_regularizers(cfg)
        runs.append(Run(run_dir, (str(cfg.dataset.name), str(cfg.model.name)), method_label(cfg),
                        "+".join(n for n, _ in regs) or "none", regs[0][1] if len(regs) == 1 else None,
                        int(cfg.seed), run_settings(overrides, cfg), {k: float(v) for k, v in metrics.items()},
                        last_placement(run_dir), comparable_config(cfg)))
    return runs, left_out


def evaluated_step(files: RunFiles) -> int | None:
    """The step of the checkpoint the run's metrics were computed from (eval_protocol.json), or the step
    its last attempt finished at; None when neither says."""
    step = read_json(files.protocol).get("checkpoint_step")
    if step is None:
        step = last_attempt(files.root).get("finished_step")
    return None if step is None else int(step)


def varying_keys(runs: list[Run]) -> list[str]:
    """The override keys whose value is not the same in every run (absent counts as a value)."""
    keys = sorted({key for run in runs for key in run.settings})
    return [key for key in keys if len({run.settings.get(key) for run in runs}) > 1]


def group_runs(runs: list[Run], keys: list[str], baseline: str = "none") -> list[Group]:
    """Rows: one per (method, values of `keys`); the baseline rows first (`Group.is_named`), then by method
    and values."""
    groups: dict[tuple, Group] = {}
    for run in runs:
        settings = tuple((key, run.settings.get(key, "-")) for key in keys)
        group = groups.setdefault((run.method, settings), Group(run.family, run.weight, settings))
        group.runs[run.seed].append(run)
    return sorted(groups.values(), key=lambda g: (not g.is_named(baseline), g.family, g.weight or 0.0,
                                                  tuple(value_order(value) for _, value in g.settings)))


def value_order(value: str) -> tuple:
    """Numbers before text and in numeric order (a sweep's 8 before 16), text in alphabetical order."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def run_status(run_dir: Path) -> str:
    """Why a run has no metrics: diverged (the loop stopped it, run_info.json says where), stopped
    (a UserError: a refused option, missing data, ...; run_info.json has its message), interrupted (a
    signal: SLURM's, Ctrl-C), finished with none asked for, metrics.json damaged, or failed or
    unfinished (still running, killed, or crashed)."""
    attempt = last_record(run_dir)   # a refused resume is why a run has no metrics now
    diverged, stopped, interrupted = attempt.get("diverged"), attempt.get("stopped"), attempt.get("interrupted")
    if diverged:
        return f"diverged: {diverged.get('what', 'a loss')} became NaN or inf at step {diverged.get('step', '?')}"
    if stopped:
        return f"stopped: {stopped}"
    if interrupted:
        checkpoint = interrupted.get("checkpoint_step", interrupted.get("step"))   # SIGTERM/USR1 save at the step
        return (f"interrupted by {interrupted.get('signal')} at step {interrupted.get('step')} "
                + ("before its first checkpoint; the same command starts it anew" if checkpoint is None else
                   f"(its checkpoint: step {checkpoint}); the same command resumes it"))
    metrics_file = RunFiles(run_dir).metrics
    if metrics_file.is_file():
        try:
            json.loads(metrics_file.read_text())
            return "finished without metrics (eval.metrics=[])"
        except (ValueError, UnicodeDecodeError):
            return f"its metrics.json is damaged (`msgan eval run={run_dir}` writes it again)"
    return "failed or unfinished"


def runs_never_started(sweep_dir: Path) -> list[str]:
    """The runs the sweep's multirun.yaml asks for that have no folder: cancelled, or killed before
    they began (Hydra's basic sweeper, which every launcher here uses: the product of the swept values,
    numbered in launch order, each in the folder of its number). Each as "#5: reg=ms seed=2" (the swept
    keys). Empty where that cannot be known: no multirun.yaml, another sweeper or folder naming."""
    path = sweep_dir / SWEEP_RECORD
    if not path.is_file():
        return []
    hydra_cfg = OmegaConf.to_container(OmegaConf.load(path).get("hydra", {}), resolve=False)
    sweeper, subdir = hydra_cfg.get("sweeper") or {}, (hydra_cfg.get("sweep") or {}).get("subdir")
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper") or subdir != "${hydra.job.num}":
        return []
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    arguments = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    arguments += list((hydra_cfg.get("overrides") or {}).get("task") or [])
    try:   # as the sweeper expanded them (a sweep over config files by glob would need the config loader)
        jobs = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(arguments), None)[0]
    except Exception:
        return []
    swept = [i for i in range(len(jobs[0]) if jobs else 0) if len({job[i] for job in jobs}) > 1]
    return [f"#{number}: {' '.join(job[i] for i in swept)}" for number, job in enumerate(jobs)
            if not RunFiles(sweep_dir / str(number)).config.is_file()]


def last_placement(run_dir: Path) -> str | None:
    """Where the run's latest attempt ran, from run_info.json (train/placement.py)."""
    latest = last_attempt(run_dir)
    if "host" not in latest:   # none, or a run stopped before it was placed
        return None
    slurm = latest.get("slurm", {})
    job = (f"{slurm['array_job_id']}_{slurm['array_task_id']}" if "array_job_id" in slurm else slurm.get("job_id"))
    return latest["host"] + (f", SLURM job {job}" if job else "") + (f", {latest['gpu']}" if latest.get("gpu") else "")
