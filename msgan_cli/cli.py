"""`msgan <command> [options]`: dispatch only. The commands live in msgan_cli.commands."""
from __future__ import annotations

import os
import sys

USAGE = """usage: msgan <command> [key=value ...]

Train conditional GANs, measure and cure mode collapse.

commands:
  train     train one run (Hydra: dataset=, model=, reg=, hardware=, experiment=, -m for sweeps)
  eval      metrics of a finished run:      msgan eval run=DIR [metrics=[...]]
  sample    sample grids from a run:        msgan sample run=DIR n=64 [condition=C]
  report    one table of a sweep:           msgan report SWEEP_DIR
  train-classifier  the metrics' classifier:  msgan train-classifier dataset=NAME

examples:
  msgan train                              # the embedded default: conditional DCGAN + mode seeking on digits
  msgan train model=mlp dataset=grid25 reg=none
  msgan train -m reg=none,ms seed=0,1,2    # a sweep
  msgan train --help                       # every config group and option
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, options = argv[0], argv[1:]
    if command not in ("train", "eval", "sample", "report", "train-classifier"):
        print(f"msgan: unknown command '{command}'.\n\n{USAGE}", file=sys.stderr)
        return 2

    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from msgan_cli import commands
    from msgan_cli.errors import UserError

    try:
        if command != "train" and any(option in ("-h", "--help") for option in options):
            print(command_help(command))
            return 0
        if command == "train":
            return run_train(options)
        {"eval": commands.eval_command, "sample": commands.sample_command, "report": commands.report_command,
         "train-classifier": commands.train_classifier_command}[command](options)
    except UserError as error:
        print(f"msgan {command}: {error}", file=sys.stderr)
        return 2
    except (HydraException, OmegaConfBaseException) as error:
        print(f"msgan {command}: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:   # the output was piped into a reader that stopped early (`| head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # so the exit flush does not fail again
        return 0
    return 0


def command_help(command: str) -> str:
    """A command's own usage (its docstring) and, where it has one, its config file with the comments
    that explain each option. (`msgan train --help` is Hydra's: every group and option.)"""
    import inspect
    from importlib.resources import files

    from msgan_cli import commands
    function = {"eval": commands.eval_command, "sample": commands.sample_command, "report": commands.report_command,
                "train-classifier": commands.train_classifier_command}[command]
    text = "usage: " + inspect.getdoc(function).strip("`").replace("`:", ":", 1)
    config = files("msgan_cli.conf") / f"{command}.yaml"   # the configs ship inside the package
    if config.is_file():
        text += f"\n\noptions (key=value; {config.name}):\n" + config.read_text()
    elif command == "train-classifier":
        text += "\n\noptions: those of msgan train (dataset=..., eval.classifier.*, hardware=...); see msgan train --help."
    return text


def run_train(options: list[str]) -> int:
    """Hand the options to the Hydra app, after the msgan-specific preparation of the overrides."""
    from msgan_cli import commands
    from msgan_cli.config import check_reg_choices, normalize_overrides
    from msgan_cli.train.distributed import init_process_group

    options = normalize_overrides(options)
    check_reg_choices(options)
    options = share_run_dir(options, init_process_group())
    sys.argv = ["msgan train", *options]
    commands.train_main()
    return 0


def share_run_dir(options: list[str], info) -> list[str]:
    """Under torchrun every rank would otherwise pick its own timestamped run directory: rank 0
    chooses, every rank uses it, and only rank 0 lets Hydra write its files and logs there."""
    if info.world_size == 1:
        return options
    if any(o in ("-m", "--multirun") for o in options):
        from msgan_cli.errors import UserError
        raise UserError("A multirun under torchrun is not supported: launch each job with torchrun instead.")
    from datetime import datetime

    from msgan_cli.train.distributed import broadcast_object
    if not any(o.startswith("hydra.run.dir=") for o in options):
        run_dir = broadcast_object(datetime.now().strftime("outputs/%Y-%m-%d/%H-%M-%S"))
        options = options + [f"hydra.run.dir={run_dir}"]
    if not info.is_main:
        options = options + ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    return options


if __name__ == "__main__":
    sys.exit(main())
