"""`msgan report SWEEP_DIR`: the tables of a sweep, one per (dataset, model). A row per method (the
`reg` choice and its weights) and per value of every other override that differs between the runs
(read from each run's `.hydra/overrides.yaml`, one column per key), the baseline (`none`) first; a
column per metric as mean ± std over seeds, its better direction in the header and the best row in
bold. No finished run is dropped: runs of the same configuration and seed are averaged per seed and
listed; runs left out of the tables are listed with the reason: no metrics.json (diverged, stopped,
failed or unfinished, as run_info.json says), metrics of a step before the run's budget, a config that
cannot be read; and the runs multirun.yaml asks for that never started are listed too.
Written as Markdown (report.md), CSV (report.csv: numbers, a mean and a std column per metric, n =
seeds) and a plot (report.png: each headline metric against the regulariser weight where the sweep
varied it, else one bar per row, every seed's value as a dot), and printed. A last column says
where the runs ran (host, SLURM job, GPU).
"""
from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from msgan_cli.config import flat, load_saved_config, method_label, selected_regularizers
from msgan_cli.core.jsonfiles import last_attempt, read_json
from msgan_cli.core.run_files import SWEEP_RECORD, RunFiles, run_folders
from msgan_cli.errors import UserError
from msgan_cli.metric_names import split_direction
from msgan_cli.metrics import METRICS, Metric  # importing it registers every metric

PER_CLASS = re.compile(r"/class\d+_")   # per-class columns: in the CSV only, the Markdown stays readable


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
    def seeds(self) -> list[int]:
        return sorted(self.runs)

    @property
    def places(self) -> set[str]:
        return {run.place for runs in self.runs.values() for run in runs if run.place}

    @property
    def values(self) -> dict[str, list[float]]:
        """Per metric, one value per seed: the mean of that seed's runs (several runs of one seed in one
        row are the same configuration run again, e.g. reg=none under a swept ms weight)."""
        per_metric = defaultdict(list)
        for seed in self.seeds:
            seed_values = defaultdict(list)
            for run in self.runs[seed]:
                for name, value in run.metrics.items():
                    seed_values[name].append(value)
            for name, values in seed_values.items():
                per_metric[name].append(sum(values) / len(values))
        return per_metric

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


def mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


DISPLAY_ONLY = {"trainer.progress_bar"}   # how a run shows progress, not what it computes


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


def group_runs(runs: list[Run], keys: list[str]) -> list[Group]:
    """Rows: one per (method, values of `keys`); the baseline (`none`) first, then by method and values."""
    groups: dict[tuple, Group] = {}
    for run in runs:
        settings = tuple((key, run.settings.get(key, "-")) for key in keys)
        group = groups.setdefault((run.method, settings), Group(run.family, run.weight, settings))
        group.runs[run.seed].append(run)
    return sorted(groups.values(), key=lambda g: (g.family != "none", g.family, g.weight or 0.0,
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
    attempt = last_attempt(run_dir)
    diverged, stopped, interrupted = attempt.get("diverged"), attempt.get("stopped"), attempt.get("interrupted")
    if diverged:
        return f"diverged: {diverged.get('what', 'a loss')} became NaN or inf at step {diverged.get('step', '?')}"
    if stopped:
        return f"stopped: {stopped}"
    if interrupted:
        return (f"interrupted by {interrupted.get('signal')} at step {interrupted.get('step')} (its checkpoint: step "
                f"{interrupted.get('checkpoint_step', interrupted.get('step'))}); the same command resumes it")
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


def registered(key: str) -> tuple[Metric | None, str]:
    """The registered metric a metrics.json key belongs to (None: not a metric of this version of msgan),
    and the key without its view (`fid/AtoB/inception` -> `fid/inception`)."""
    plain = split_direction(key)[0]
    return METRICS.get(plain.split("/", 1)[0]), plain


def headline_position(key: str) -> tuple[int, int] | None:
    """Where a headline number's column goes (its metric's rank, then its place in the metric's headline),
    or None for a number that is not a headline (core/registry.py: Metric.headline)."""
    metric, plain = registered(key)
    if metric is None or metric.part(plain) not in metric.headline:
        return None
    return metric.rank, metric.headline.index(metric.part(plain))


def ordered_metrics(names: set[str]) -> list[str]:
    """Headline metrics first, as their metrics rank them, then the others by name; a metric measured in
    several views (`fid/AtoB/...`) sits where its undirected key would, its views in turn."""
    def order(name: str) -> tuple:
        plain, way = split_direction(name)
        position = headline_position(name)
        return (0, *position, "", way or "") if position is not None else (1, 0, 0, plain, way or "")
    return sorted(names, key=order)


SHARED_CONTEXT = "classifier_test_acc"   # the one classifier's accuracy, recorded beside each metric using it


def direction(metric: str) -> str | None:
    """Whether lower or higher is better, as the metric declared it when it was registered (whichever
    view it was measured in), or None: a count in the data, a classifier's own accuracy, a per-class value."""
    registered_metric, plain = registered(metric)
    return None if registered_metric is None else registered_metric.better_direction(plain)


def table_columns(metrics: list[str]) -> list[tuple[str, str]]:
    """(metric, header) for the Markdown table: no per-class columns, the classifier's accuracy once (per
    translation direction: each direction's target domain has its own classifier)."""
    columns, shared_seen = [], set()
    for metric in metrics:
        if PER_CLASS.search(metric):
            continue
        if metric.endswith(SHARED_CONTEXT):
            way = split_direction(metric)[1]
            if way not in shared_seen:
                columns.append((metric, SHARED_CONTEXT if way is None else f"{SHARED_CONTEXT} {way}"))
            shared_seen.add(way)
            continue
        arrow = {"lower": " ↓", "higher": " ↑"}.get(direction(metric), "")
        columns.append((metric, metric + arrow))
    return columns


def best_rows(groups: list[Group], metric: str) -> set[int]:
    """Indices of the rows with the best mean for a metric with a direction (none with fewer than 2 rows)."""
    means = {i: mean_std(g.values[metric])[0] for i, g in enumerate(groups) if g.values.get(metric)}
    way = direction(metric)
    if way is None or len(means) < 2:
        return set()
    best = (min if way == "lower" else max)(means.values())
    return {i for i, m in means.items() if m == best}


def cell(values: list[float] | None, best: bool = False) -> str:
    if not values:
        return ""
    mean, std = mean_std(values)
    text = f"{mean:.4g} ± {std:.2g}"
    return f"**{text}**" if best else text


def markdown_table(table: tuple[str, str], groups: list[Group], keys: list[str]) -> list[str]:
    metrics = ordered_metrics({m for g in groups for m in g.values})
    columns = table_columns(metrics)
    repeated = any(g.duplicates() for g in groups)
    header = ["method", *keys, "seeds", *(["runs"] if repeated else []), *(h for _, h in columns), "ran on"]
    lines = [f"### {table[0]} / {table[1]}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best = {metric: best_rows(groups, metric) for metric, _ in columns}
    for i, group in enumerate(groups):
        runs = sum(len(r) for r in group.runs.values())
        row = [group.label, *(value for _, value in group.settings), str(len(group.seeds)),
               *([str(runs)] if repeated else []), *(cell(group.values.get(m), i in best[m]) for m, _ in columns),
               "; ".join(sorted(group.places))]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if any(best.values()):
        lines += ["Bold: the best mean of a column (↓ lower is better, ↑ higher); mean ± std over seeds.", ""]
    for group in groups:
        for seed, paths in group.duplicates().items():
            lines.append(f"- {group.label} {' '.join(f'{k}={v}' for k, v in group.settings)}: seed {seed} has "
                         f"{len(paths)} runs of the same configuration, averaged: {', '.join(map(str, paths))}")
    differing = [(group, group.config_differences()) for group in groups]
    for group, differences in differing:
        if differences:
            listed = "; ".join(f"{key}: {' / '.join(values)}" for key, values in differences.items())
            row = " ".join([group.label, *(f"{k}={v}" for k, v in group.settings)])
            lines.append(f"- Warning: the runs of {row} were given the same options but their configs differ "
                         f"({listed}), e.g. runs of two code versions: the row averages them; report their "
                         f"folders apart if that is not what you meant.")
    return lines + ([""] if repeated or any(d for _, d in differing) else [])


def csv_rows(table: tuple[str, str], groups: list[Group], keys: list[str], all_keys: list[str],
             metrics: list[str]) -> list[list]:
    """Numbers, not text: per metric a mean and a std column, the seed count as n."""
    rows = []
    for group in groups:
        settings = dict(group.settings)
        values = group.values
        row = [*table, group.label, *(settings.get(k, "") for k in all_keys), len(group.seeds),
               sum(len(r) for r in group.runs.values())]
        for metric in metrics:
            row += list(mean_std(values[metric])) if values.get(metric) else ["", ""]
        rows.append(row + ["; ".join(sorted(group.places))])
    return rows


def build_report(sweep_dir: Path) -> tuple[Path, str]:
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a directory: give the folder of a multirun (or of one run).")
    runs, left_out = collect_runs(sweep_dir)
    never_started = runs_never_started(sweep_dir)
    if not runs and not left_out:
        raise UserError(f"No msgan runs (.hydra/config.yaml) found under {sweep_dir}.")
    by_table = defaultdict(list)
    for run in runs:
        by_table[run.table].append(run)
    tables = {}   # (dataset, model) -> (varying keys, rows)
    for table, table_runs in sorted(by_table.items()):
        keys = varying_keys(table_runs)
        tables[table] = (keys, group_runs(table_runs, keys))

    lines, rows = [], []
    all_keys = sorted({key for keys, _ in tables.values() for key in keys})
    all_metrics = ordered_metrics({m for run in runs for m in run.metrics})
    for table, (keys, groups) in tables.items():
        lines += markdown_table(table, groups, keys)
        rows += csv_rows(table, groups, keys, all_keys, all_metrics)
    if left_out:
        lines += [f"Runs not in the tables: {len(left_out)}"]
        lines += [f"- {path}: {reason}" for path, reason in left_out]
    if never_started:
        lines += [f"Runs of the sweep (multirun.yaml) that never started, no folder: {len(never_started)}"]
        lines += [f"- {run}" for run in never_started]
    text = "\n".join(lines) + "\n"
    markdown_path = sweep_dir / "report.md"
    markdown_path.write_text(text)
    with open(markdown_path.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "model", "method", *all_keys, "n", "runs",
                         *(f"{m}:{stat}" for m in all_metrics for stat in ("mean", "std")), "ran on"])
        writer.writerows(rows)
    if runs:
        plot_report({table: groups for table, (_, groups) in tables.items()}, markdown_path.with_suffix(".png"))
    return markdown_path, text


def plot_report(tables: dict[tuple[str, str], list[Group]], path: Path, per_table: int = 4) -> None:
    """One row of panels per (dataset, model), one panel per headline metric: the mean +- std over
    seeds, and each seed's value as a point beside it."""
    import matplotlib
    matplotlib.use("Agg")   # files only, no display
    import matplotlib.pyplot as plt

    rows = list(tables.items())
    figure, axes = plt.subplots(len(rows), per_table, figsize=(3.4 * per_table, 3.0 * len(rows)), squeeze=False)
    for row, ((dataset, model), groups) in enumerate(rows):
        metrics = [m for m in ordered_metrics({m for g in groups for m in g.values}) if direction(m) is not None]
        for column in range(per_table):
            axis = axes[row][column]
            if column >= len(metrics):
                axis.axis("off")
                continue
            metric = metrics[column]
            plot_metric(axis, groups, metric)
            better = {"lower": "lower is better", "higher": "higher is better"}[direction(metric)]
            axis.set_ylabel(f"{metric}\n({better})", fontsize=7)
            axis.set_title(f"{dataset} / {model}", fontsize=8)
            axis.tick_params(labelsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)


def plot_metric(axis, groups: list[Group], metric: str) -> None:
    """Against the weight for a regulariser swept over several weights (reg=none as a dashed line);
    otherwise one bar per row. Seeds are the small dots."""
    shown = [g for g in groups if g.values.get(metric)]
    families = defaultdict(list)
    for group in shown:
        if group.weight is not None:
            families[(group.family, group.settings)].append(group)
    swept = {key: members for key, members in families.items() if len(members) > 1}
    if swept:
        for (family, settings), members in swept.items():
            members = sorted(members, key=lambda g: g.weight)
            stats = [mean_std(g.values[metric]) for g in members]
            label = " ".join([family, *(f"{k}={v}" for k, v in settings)])
            line = axis.errorbar([g.weight for g in members], [m for m, _ in stats], yerr=[s for _, s in stats],
                                 marker="o", capsize=3, label=label)
            for group in members:
                axis.plot([group.weight] * len(group.values[metric]), group.values[metric], ".", alpha=0.5,
                          color=line[0].get_color())
        for baseline in (g for g in shown if g.family == "none"):
            axis.axhline(mean_std(baseline.values[metric])[0], linestyle="--", color="grey", label="none")
        axis.set_xlabel("regulariser weight", fontsize=7)
        axis.legend(fontsize=6)
        return
    stats = [mean_std(g.values[metric]) for g in shown]
    axis.bar(range(len(shown)), [m for m, _ in stats], yerr=[s for _, s in stats], capsize=3, color="lightsteelblue")
    for i, group in enumerate(shown):
        axis.plot([i + 0.25] * len(group.values[metric]), group.values[metric], "k.", alpha=0.6)
    labels = [" ".join([g.label, *(f"{k}={v}" for k, v in g.settings)]) for g in shown]
    axis.set_xticks(range(len(shown)), labels, rotation=45, ha="right", fontsize=6)
