"""Name -> implementation registries: datasets, models, regularisers and metrics.

Each is filled by a decorator in the modules of one package (`@register_model("drit")` in
`models/drit/`, `@register_regularizer("ms")` in `regularizers/mode_seeking.py`, ...), and each package
imports its own modules when it is imported (`import_submodules`), so adding a module is enough.
A module that defines an implementation imports the decorator from here; code that looks one up
imports the registry from its package (`from msgan_cli.regularizers import REGULARIZERS`), which
guarantees that the package's modules have registered themselves.
"""
from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterable, TypeVar

from msgan_cli.errors import UserError

if TYPE_CHECKING:   # the types of what the registries hold; core imports none of their packages
    from omegaconf import DictConfig

T = TypeVar("T")


class Registry(dict, Generic[T]):
    def __init__(self, kind: str, config_key: str):
        super().__init__()
        self.kind, self.config_key = kind, config_key

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: file `obj` under `name` (a class also gets `obj.name = name`)."""
        def decorate(obj: T) -> T:
            if isinstance(obj, type):
                obj.name = name
            self[name] = obj
            return obj
        return decorate

    def lookup(self, name: str) -> T:
        """The implementation named `name`, or a UserError listing the available ones."""
        if name not in self:
            raise UserError(f"No {self.kind} named '{name}' ({self.config_key}). Available: {', '.join(sorted(self))}.")
        return self[name]


def import_submodules(package: str, path: Iterable[str], packages_only: bool = False, skip: tuple[str, ...] = ()) -> None:
    """Import every module (or every subpackage) of `package`, so that their decorators register them."""
    for module in pkgutil.iter_modules(path):
        if module.name not in skip and (module.ispkg or not packages_only):
            importlib.import_module(f"{package}.{module.name}")


DATASETS: Registry[Callable[["DictConfig"], Any]] = Registry("dataset", "dataset.name")   # cfg -> data.Data
MODELS: Registry[type] = Registry("model", "model.name")                                 # models.base.Recipe
REGULARIZERS: Registry[type] = Registry("regulariser", "reg=")                           # regularizers.base.Regularizer
register_dataset = DATASETS.register
register_model = MODELS.register
register_regularizer = REGULARIZERS.register


# --- metrics ----------------------------------------------------------------------------------------

BETTER = ("higher", "lower")


def always_available(options, data) -> str | None:
    return None


def no_options_to_check(options) -> str | None:
    return None


def one_sample_each(options) -> tuple[int, int]:
    return 1, 1


@dataclass(frozen=True)
class Metric:
    """A registered metric. `compute(ctx) -> {key: number}` with keys `<name>` or `<name>/<part>`
    (metrics/context.py: EvalContext). `unsupported(recipe, data)`: why it does not apply, or None.
    `unavailable(eval_options, data)`: what is missing to compute it here (pretrained weights, labels
    to train the project's classifier on), or None; `eval.metrics=auto` then skips it, naming it is an
    error. `invalid_options(eval_options)`: what is wrong with the metric's own options (`eval.<name>.*`),
    or None; refused before any run starts, whether the metric is named or `auto` would pick it, since
    an option given and not applied would be a silent mistake. `min_samples(eval_options) -> (real, fake)`:
    the fewest real and generated samples it can be computed from (checked before a run starts, per view).
    `better`: for each part of its keys (`""` for the bare `<name>`; a glob such as `*_mean`), whether
    `higher` or `lower` is better; a key it does not match (a count of modes in the data, a classifier's
    own accuracy, a per-class value) has no better direction. `headline`: the parts that
    `msgan report` shows first and plots, in this order; `rank` places them among other metrics'
    (lower first: modes found 10, binned distributions 20, fidelity 30, classifier accuracy 40,
    diversity 50). `frontier`: (quality part, diversity part), two of its parts that `msgan report`
    plots against each other as the diversity-quality frontier (e.g. `("high_quality", "modes")`;
    globs with one `*` that stands for the same text in both, as `("*_precision", "*_recall")`)."""

    name: str
    compute: Callable[[Any], dict[str, float]]
    unsupported: Callable[[Any, Any], str | None]
    unavailable: Callable[[Any, Any], str | None] = always_available
    min_samples: Callable[[Any], tuple[int, int]] = one_sample_each
    invalid_options: Callable[[Any], str | None] = no_options_to_check
    better: tuple[tuple[str, str], ...] = ()
    headline: tuple[str, ...] = ()
    rank: int = 100
    frontier: tuple[str, str] | tuple[()] = ()

    def part(self, key: str) -> str:
        """The part of a key of this metric after its name: `modes` of `modes_2d/modes`, `""` of `class_acc`."""
        return key[len(self.name) + 1:] if key.startswith(self.name + "/") else ""

    def better_direction(self, key: str) -> str | None:
        """`higher` or `lower` for a key of this metric (without a view: metric_names.split_direction), or None."""
        part = self.part(key)
        return next((way for pattern, way in self.better if fnmatch.fnmatchcase(part, pattern)), None)


METRICS: Registry[Metric] = Registry("metric", "eval.metrics")


def register_metric(name: str, unsupported: Callable[[Any, Any], str | None],
                    unavailable: Callable[[Any, Any], str | None] = always_available,
                    min_samples: Callable[[Any], tuple[int, int]] = one_sample_each,
                    better: dict[str, str] | None = None, headline: tuple[str, ...] = (), rank: int = 100,
                    frontier: tuple[str, str] | tuple[()] = (),
                    invalid_options: Callable[[Any], str | None] = no_options_to_check):
    """Decorator for a metric function `EvalContext -> {key: number}` (see `Metric` for the arguments)."""
    for pattern, way in (better or {}).items():
        if way not in BETTER:
            raise ValueError(f"metric {name}: better[{pattern!r}] must be one of {BETTER}, got {way!r}")
    if frontier and (len(frontier) != 2 or len({part.count("*") for part in frontier} - {0, 1}) or
                     frontier[0].count("*") != frontier[1].count("*")):
        raise ValueError(f"metric {name}: frontier must be (quality part, diversity part), with one `*` in both "
                         f"or in neither, got {frontier!r}")

    def decorate(compute: Callable[[Any], dict[str, float]]):
        METRICS.register(name)(Metric(name, compute, unsupported, unavailable=unavailable, min_samples=min_samples,
                                      invalid_options=invalid_options, better=tuple((better or {}).items()),
                                      headline=tuple(headline), rank=rank, frontier=tuple(frontier)))
        return compute
    return decorate
