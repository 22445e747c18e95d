"""What a metric may use: `EvalContext`, one per evaluated view of a model (metrics/__init__.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig

from msgan_cli.core.batch import Tree, take
from msgan_cli.core.distributed import shard_and_gather
from msgan_cli.data import Batch, Data
from msgan_cli.metrics.classifier import SmallClassifier, load_or_train_classifier
from msgan_cli.models import Direction, Recipe
from msgan_cli.sampling import evaluation_mode


def sample_counts(recipe: Recipe, data: Data, options: DictConfig) -> tuple[int, int]:
    """(real, generated) samples a metric sees in one view: `eval.num_samples` generated (for conditions
    from data, MSGAN's protocol: the first `per_input.inputs` held-out inputs x `per_input.samples`), and
    as many real ones, at most the training split (`EvalContext.real`)."""
    if recipe.conditions_come_from_data:
        generated = min(int(options.per_input.inputs), len(data.evaluation_split)) * int(options.per_input.samples)
    else:
        generated = int(options.num_samples)
    return min(generated, len(data.train)), generated


@dataclass
class EvalContext:
    """What a metric may use: the model, the direction it evaluates with that direction's view of the
    data, a seeded generator for latents, the conditions to generate for, the evaluation options
    (sample counts, classifier settings), and a cache shared between metrics (of one direction).

    Conditions: balanced class indices for a class-conditional model; for a model whose conditions
    come from data (an input image), MSGAN's test protocol: the first `eval.per_input.inputs` held-out
    inputs, `eval.per_input.samples` outputs each, which then is the sample count of every metric.
    A model that translates both ways (DRIT) is evaluated once per direction: in B -> A, `data` is
    the reversed data (B's images the inputs, A's the real images) and the outputs are G's B -> A."""

    recipe: Recipe
    direction: Direction
    device: torch.device
    options: DictConfig
    dataset_cfg: DictConfig
    seed: int = 0
    cache: dict[str, object] = field(default_factory=dict)
    protocol: dict[str, dict] = field(default_factory=dict)   # per metric: how it was measured

    def __post_init__(self):
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)

    @property
    def data(self) -> Data:
        return self.direction.data

    @property
    def num_samples(self) -> int:
        return sample_counts(self.recipe, self.data, self.options)[1]

    def evaluation_inputs(self) -> tuple[Batch, int]:
        """The held-out samples whose inputs condition the outputs (the first `eval.per_input.inputs`
        of the test split, or of the training split without one), and the outputs per input."""
        if "evaluation_inputs" not in self.cache:
            split = self.data.evaluation_split
            count = min(int(self.options.per_input.inputs), len(split))
            self.cache["evaluation_inputs"] = split.batch(torch.arange(count, device=self.device))
        return self.cache["evaluation_inputs"], int(self.options.per_input.samples)

    def describe_conditions(self, per_input: int | None = None) -> str:
        """How the evaluated samples were conditioned, for the protocol (`per_input`: a metric that
        draws its own count of outputs per input says so)."""
        recipe = self.recipe
        if not recipe.conditional:
            return "unconditional"
        if not recipe.conditions_come_from_data:
            return f"{recipe.condition_kind}: {recipe.num_classes} classes, balanced"
        inputs, default_per_input = self.evaluation_inputs()
        which = "test" if self.data.evaluation_split is self.data.test else "train"
        direction = ", ".join(part for part in (self.direction.name, self.direction.setting) if part)
        direction = f" ({direction})" if direction else ""
        return (f"{recipe.condition_kind}{direction}: the first {len(inputs)} {which} inputs x "
                f"{per_input or default_per_input} samples each")

    def input_of_sample(self, n: int) -> torch.Tensor:
        """For conditions from data: which evaluation input sample i of n is conditioned on (inputs in
        order, `per_input.samples` consecutive samples each, cycling if n asks for more)."""
        inputs, per_input = self.evaluation_inputs()
        return (torch.arange(n, device=self.device) // per_input) % len(inputs)

    def conditions(self, n: int) -> Tree:
        """Conditions for n samples: class i % num_classes for class-conditional models, the evaluation
        inputs for models conditioned on data (`input_of_sample`), None for unconditional ones."""
        if not self.recipe.conditional:
            return None
        if not self.recipe.conditions_come_from_data:
            return torch.arange(n, device=self.device) % self.recipe.num_classes
        inputs, _ = self.evaluation_inputs()
        return take(self.direction.condition(inputs), self.input_of_sample(n))

    def class_labels(self, n: int) -> torch.Tensor | None:
        """The class each of n samples is asked for (class-conditional models), else None."""
        return self.conditions(n) if self.recipe.condition_kind == "class" else None

    def generate(self, z: torch.Tensor, conditions: Tree, chunk: int = 500) -> torch.Tensor:
        """G's outputs of the direction in eval mode, in chunks, as float32. Under DDP each process generates
        its share and all receive every output: the same samples as one process, each computed once."""
        def generate_rows(rows: torch.Tensor) -> torch.Tensor:
            outputs = []
            with evaluation_mode(self.recipe):
                for start in range(0, len(rows), chunk):
                    part = rows[start:start + chunk]
                    outputs.append(self.direction.generate(self.recipe, z[part], take(conditions, part)).float())
            return torch.cat(outputs)

        return shard_and_gather(torch.arange(len(z), device=z.device), generate_rows)

    def classifier(self) -> tuple[SmallClassifier, float]:
        """The dataset's classifier and its test accuracy (trained on first use, then cached); a view cut
        from other data (`Data.whole`) uses the whole data's."""
        if "classifier" not in self.cache:
            self.cache["classifier"] = load_or_train_classifier(
                self.data.whole or self.data, self.dataset_cfg, self.options.classifier, self.device)
        return self.cache["classifier"]

    def real(self, n: int) -> Batch:
        """min(n, all) training samples (for translation data: the targets, of the direction's target
        domain), a subset fixed by the evaluation seed."""
        count = min(n, len(self.data.train))
        chosen = torch.randperm(len(self.data.train), generator=torch.Generator().manual_seed(self.seed))[:count]
        return self.data.train.batch(chosen.to(self.device))

    def sample(self, n: int, conditions: Tree = None) -> torch.Tensor:
        z = self.recipe.sample_latent(n, self.device, self.generator)
        return self.generate(z, conditions)
