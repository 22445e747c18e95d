"""Config composition shared by the CLI, the commands and the tests.

`conf/` ships inside the package as `msgan_cli.conf` (see setup.py), so an installed msgan finds its
configs from any directory.
"""
from __future__ import annotations

import difflib
import importlib.util
import re
from importlib import resources
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from msgan_cli.errors import UserError

CONFIG_MODULE = "msgan_cli.conf"
_REG_OPTION = re.compile(r"^reg\.[A-Za-z_][\w]*\.")


def normalize_overrides(overrides: list[str]) -> list[str]:
    """`reg.<name>.<key>=v` becomes `++reg.<name>.<key>=v`, so a sweep such as
    `reg=none,ms reg.ms.weight=0.5,1` also composes for the jobs where ms is not selected
    (the regulariser builder validates and then ignores those options)."""
    return ["++" + o if _REG_OPTION.match(o) else o for o in overrides]


def check_override_grammar(overrides: list[str]) -> None:
    """Each `key=value` in Hydra's override grammar, or one sentence naming it with the parser's reason and
    how to quote (Hydra's own message named neither the command's option nor the fix)."""
    from hydra.errors import HydraException
    parser = OverridesParser.create()
    for override in overrides:
        if "=" not in override or override.startswith("-"):
            continue
        try:
            parser.parse_override(override)
        except HydraException as error:
            reason = str(error).strip().splitlines()[0]
            raise UserError(f"cannot read the option {override!r} ({reason}). A value that holds spaces or any of "
                            f"()[]{{}}',=: needs quotes, as in \"key='a value'\" (the outer quotes for the shell)."
                            ) from None


def available_options(group: str) -> list[str]:
    """Names of the YAML files of a config group, plus configs registered in Hydra's ConfigStore."""
    names = {p.name[:-5] for p in resources.files(CONFIG_MODULE).joinpath(group).iterdir() if p.name.endswith(".yaml")}
    stored = ConfigStore.instance().repo.get(group, {})
    names |= {name[:-5] if name.endswith(".yaml") else name for name in stored}
    return sorted(names)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    if hasattr(value, "list"):            # a sweep: its choices
        return _strings(list(value.list))
    return []


def check_reg_choices(overrides: list[str]) -> None:
    """Hydra names the available options for an unknown single choice (`model=foo`) but not inside a
    list (`reg=[ms,foo]`); this check does, for every `reg=` override, sweeps included."""
    available = set(available_options("reg"))
    parser = OverridesParser.create()
    for text in overrides:
        if not text.lstrip("+~").startswith("reg="):
            continue
        try:
            override = parser.parse_overrides([text])[0]
        except Exception:   # a syntax error: Hydra reports it with its own message
            continue
        unknown = sorted(set(_strings(override._value)) - available)
        if unknown:
            raise UserError(f"No regulariser config named {', '.join(unknown)} (in {text}). "
                            f"Available for reg=: {', '.join(sorted(available))}.")


# Launchers from optional extras: choice -> (the plugin's module, the extra that installs it).
OPTIONAL_LAUNCHERS = {"parallel": ("hydra_plugins.hydra_joblib_launcher", "parallel"),
                      "joblib": ("hydra_plugins.hydra_joblib_launcher", "parallel"),
                      "slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
                      "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm")}


def module_installed(name: str) -> bool:
    """Whether `name` can be imported. importlib's find_spec raises, rather than returning None, for a
    submodule of a namespace package nothing has created: `hydra_plugins` exists only once some Hydra
    plugin is installed, so on a plain install it raised ModuleNotFoundError."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


# Sweepers from optional extras, as OPTIONAL_LAUNCHERS.
OPTIONAL_SWEEPERS = {"optuna": ("hydra_plugins.hydra_optuna_sweeper", "optuna")}


def check_launcher_installed(overrides: list[str]) -> None:
    """A launcher or sweeper of an optional extra that is not installed is one sentence naming the
    install, not Hydra's 'Could not load hydra/launcher/joblib'."""
    optional = {"hydra/launcher": OPTIONAL_LAUNCHERS, "hydra/sweeper": OPTIONAL_SWEEPERS}
    for text in overrides:
        key, _, choice = text.partition("=")
        group = key.lstrip("+")
        if choice in optional.get(group, {}):
            module, extra = optional[group][choice]
            if not module_installed(module):
                raise UserError(f"{group}={choice} needs its Hydra plugin ({module}), which is not installed: "
                                f"pip install -e '.[{extra}]'.")


def with_search_defaults(overrides: list[str]) -> list[str]:
    """`hydra/sweeper=optuna`: both objectives maximised (the frontier's numbers that the metrics declare
    are all higher-is-better; commands.check_search_objectives refuses a direction that does not fit)
    and the sampler seeded, so that a search is the same when run again; either given is kept."""
    if "hydra/sweeper=optuna" not in overrides:
        return overrides
    given = {o.split("=", 1)[0].lstrip("+") for o in overrides}
    defaults = {"hydra.sweeper.direction": "[maximize,maximize]", "hydra.sweeper.sampler.seed": "0"}
    return overrides + [f"{key}={value}" for key, value in defaults.items() if key not in given]


def first_run_of_sweep(arguments: list[str]) -> list[str]:
    """The arguments of a sweep's first run: every flag but -m, each swept key at its first value
    (the order Hydra's basic sweeper runs them in)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    overrides = [a for a in arguments if "=" in a and not a.startswith("-")]
    flags = [a for a in arguments if a not in overrides and a not in ("-m", "--multirun")]
    runs = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(overrides), None)[0]
    return flags + runs[0]


def output_key(multirun: bool) -> str:
    return "hydra.sweep.dir" if multirun else "hydra.run.dir"


def given_output_dir(overrides: list[str], multirun: bool) -> str | None:
    """The run directory (or the sweep's) the command line names, None when Hydra picks one."""
    key = output_key(multirun)
    given = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith(key + "=")]
    return given[-1] if given else None


def nearest_existing(folder: Path) -> Path:
    """`folder`, or where it does not exist yet, the nearest folder above it: where creating it begins."""
    return next(parent for parent in (folder, *folder.parents) if parent.exists())


def write_refusal(place: Path) -> str | None:
    """Why a file cannot be written in the folder `place` (the system's words), or None when it can: tried
    with a temporary file, so that a command stops before any work rather than fail on its last write."""
    import tempfile
    try:
        tempfile.TemporaryFile(dir=place).close()
    except OSError as error:
        return error.strerror or str(error)
    return None


def check_output_location(overrides: list[str], multirun: bool) -> None:
    """Hydra creates the run directory (or the sweep's) before msgan starts: a place that cannot hold it
    (under a file, read-only) would end in Hydra's traceback. One sentence instead, naming the key."""
    key = output_key(multirun)
    directory = given_output_dir(overrides, multirun)
    if directory is None:
        with (resources.files(CONFIG_MODULE) / "train.yaml").open() as f:
            hydra_defaults = OmegaConf.to_container(OmegaConf.load(f).hydra, resolve=False)   # ${now:} unresolved
        directory = hydra_defaults["sweep" if multirun else "run"]["dir"]
    place = Path(directory.split("${")[0] or ".").absolute()   # the part fixed before any ${now:...}
    too_long = [part for part in place.parts if len(part.encode()) > 255]   # NAME_MAX of every common file system
    if too_long:
        raise UserError(f"Cannot create the run directory {directory[:80]}...: a folder name of {len(too_long[0])} "
                        f"characters is longer than file systems allow (255 bytes). Choose a shorter {key}=DIR.")
    place = nearest_existing(place)
    if not place.is_dir():
        raise UserError(f"Cannot create the run directory {directory}: {place} is a file. "
                        f"Choose another place with {key}=DIR.")
    if (refusal := write_refusal(place)) is not None:
        raise UserError(f"Cannot create the run directory {directory}: {place} is not writable "
                        f"({refusal}). Choose another place with {key}=DIR.")


def compose_config(name: str, overrides: list[str] | None = None) -> DictConfig:
    """The composed config `name` (e.g. "train") with overrides, as `msgan` would see it (no Hydra run dir)."""
    overrides = normalize_overrides(list(overrides or []))
    check_override_grammar(overrides)
    check_reg_choices(overrides)
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def flat(tree, prefix: str = "") -> dict[str, object]:
    """{'a.b': leaf, ...} of a nested dict (lists are leaves; an empty dict has no keys)."""
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in flat(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: tree}


def option_schema(cfg: DictConfig) -> dict[str, dict[str, object]]:
    """The keys a run may have under trainer, eval, hardware, dataset and model, with their default
    values (whose types are the types the keys take): trainer and eval as train.yaml defines them,
    hardware as hardware/auto.yaml, dataset and model as the group's files of the run's dataset and
    model name do (all files of that name: model=mlp_unrolled extends mlp, both named mlp), a model
    with what train.yaml gives every model besides."""
    root = resources.files(CONFIG_MODULE)
    with (root / "train.yaml").open() as f:
        train = OmegaConf.load(f)
    schema = {"trainer": flat(OmegaConf.to_container(train.trainer, resolve=False)),
              "eval": flat(OmegaConf.to_container(train.eval, resolve=False)),
              "hardware": group_file_options("hardware", "auto")}
    shared = {"dataset": {}, "model": flat(OmegaConf.to_container(train.model, resolve=False))}
    for group in ("dataset", "model"):
        if group in cfg and "name" in cfg[group]:
            options = {}
            for option in available_options(group):
                keys = group_file_options(group, option)
                if keys.get("name") == cfg[group].name:
                    options |= keys
            if options:   # a name no file declares (a test's own recipe): its keys are not checked
                schema[group] = shared[group] | options
    return schema


def group_file_options(group: str, option: str) -> dict[str, object]:
    """The flat keys and defaults that conf/<group>/<option>.yaml gives its group, with the files of the
    same group it extends (its own `defaults` list); a file in the global package (model=pix2pix also
    sets a dataset and a budget) gives its `<group>:` part."""
    path = resources.files(CONFIG_MODULE) / group / f"{option}.yaml"
    if not path.is_file():
        return {}
    text = path.read_text()
    node = OmegaConf.to_container(OmegaConf.create(text), resolve=False) or {}
    if re.search(r"^# @package _global_", text, re.M):
        return flat(node.get(group, {}))
    options: dict[str, object] = {}
    for entry in node.pop("defaults", []):
        if isinstance(entry, str) and entry != "_self_":
            options |= group_file_options(group, entry)
    return options | flat(node)


def expected_kind(default) -> tuple[type, ...] | None:
    """The types a key with this default accepts; None: not checked (strings such as `auto` that also
    take numbers or lists, interpolations, null defaults)."""
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, int):
        return (int,)
    if isinstance(default, float):
        return (int, float)
    return None


def check_options(cfg: DictConfig) -> None:
    """Every trainer / eval / hardware / dataset / model key of `cfg` is one the project knows, with a
    value of its type: a typo such as `+trainer.max_step=5` would otherwise be accepted silently, and
    `trainer.max_steps=abc` fail later with a traceback."""
    for section, known in option_schema(cfg).items():
        if section not in cfg:
            continue
        for key, value in flat(OmegaConf.to_container(cfg[section], resolve=True)).items():
            name = f"{section}.{key}"
            if key not in known:
                nearest = difflib.get_close_matches(key, list(known), n=1)
                hint = f" Did you mean {section}.{nearest[0]}?" if nearest else ""
                raise UserError(f"Unknown option {name}.{hint} (msgan train --help lists every option.)")
            kinds = expected_kind(known[key])
            if kinds is not None and (not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool))):
                wanted = {(bool,): "true or false", (int,): "a whole number", (int, float): "a number"}[kinds]
                raise UserError(f"{name} must be {wanted}; got {value!r}.")


def selected_regularizers(cfg) -> list[tuple[str, float | None]]:
    """(name, weight) of every selected regulariser; the weight None for one that adds no term (sn, sr,
    pacgan, unrolled: their options have no weight)."""
    return [(name, None if node.get("weight") is None else float(node.weight))
            for name, node in sorted((cfg.get("reg") or {}).items()) if node.get("enabled", False)]


def method_label(cfg) -> str:
    """`none`, or the selected regularisers with their weights, e.g. `ms(w=1)+sr`."""
    return "+".join(name if weight is None else f"{name}(w={weight:g})"
                    for name, weight in selected_regularizers(cfg)) or "none"


def retired(key: str, saved: dict[str, object]) -> bool:
    """Whether a key of a run's saved config (flat) is one that earlier versions wrote and no code read:
    the weight of a regulariser that adds no term, and the 2D GAN's activation of a maxout D. Such a
    run still resumes, evaluates and is reported beside new ones, which lack the key."""
    if re.fullmatch(r"reg\.(sn|sr|pacgan|unrolled)\.weight", key):
        return True
    return key == "model.discriminator.activation" and (saved.get("model.discriminator.maxout_pieces") or 1) > 1


# Keys added since some runs were saved, with the value those runs ran with (what the code did before the
# key existed): a run saved without one is read as having it, so it resumes as what it was.
ADDED_SINCE = {"trainer.lr_decay_every": "step", "model.lr_decay_every": "step"}


def in_current_form(saved: dict) -> dict:
    """A run's saved config (a nested dict) as today's code reads it: without its `retired` keys, and with
    the keys added since (`ADDED_SINCE`) at the value the run ran with."""
    flat_saved = flat(saved)

    def prune(node, prefix: str):
        if not isinstance(node, dict):
            return node
        return {key: prune(value, f"{prefix}{key}.") for key, value in node.items()
                if not retired(f"{prefix}{key}", flat_saved)}
    current = prune(saved, "")
    for key, value in ADDED_SINCE.items():
        section, name = key.split(".")
        if isinstance(current.get(section), dict) and name not in current[section]:
            current[section] = {**current[section], name: value}
    return current


def load_saved_config(path) -> DictConfig:
    """The config a run saved (`.hydra/config.yaml`) as today's code reads it (`in_current_form`); its
    interpolations are kept as written."""
    return OmegaConf.create(in_current_form(OmegaConf.to_container(OmegaConf.load(path), resolve=False)))


# What may differ between a checkpoint's config and the run that resumes it: how long to train, what
# to log and evaluate, where it runs, and where the data lives. Anything else would mix two runs under
# one name, so it is refused (trainer.allow_config_change=true accepts it, and the run says so).
RESUMABLE_CHANGES = re.compile(r"^(trainer\.(max_steps|log_every|sample_every|checkpoint_every|eval_every|progress_bar|"
                               r"best_metric|best_mode|spectrum\..*|allow_config_change)|eval\..*|hardware\..*|"
                               r"dataset\.(root|in_memory|memory_limit_mb|workers|skip_unreadable))$")


def config_changes(saved: dict, current: dict) -> list[str]:
    """The keys whose value differs between a checkpoint's resolved config and this run's, except those
    a resume may change (RESUMABLE_CHANGES), as 'key: old -> new'."""
    before, after = flat(in_current_form(saved)), flat(current)
    changed = sorted(key for key in before.keys() | after.keys()
                     if before.get(key, "<absent>") != after.get(key, "<absent>") and not RESUMABLE_CHANGES.match(key))
    return [f"{key}: {before.get(key, '<absent>')} -> {after.get(key, '<absent>')}" for key in changed]
