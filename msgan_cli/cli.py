"""`msgan <command> [options]`: dispatch only. The commands live in msgan_cli.commands."""
from __future__ import annotations

import os
import sys
from pathlib import Path

USAGE = """usage: msgan <command> [key=value ...]

Train conditional GANs, measure and cure mode collapse.

commands:
  train     train one run (Hydra: dataset=, model=, reg=, hardware=, experiment=, -m for sweeps)
  eval      metrics of a finished run:      msgan eval run=DIR [metrics=[...]]
  sample    sample grids from a run:        msgan sample run=DIR n=64 [condition=C]
  report    one table of a sweep:           msgan report SWEEP_DIR [baseline=ROW]
  train-classifier  the metrics' classifier:  msgan train-classifier dataset=NAME

examples:
  msgan train                              # the embedded default: conditional DCGAN + mode seeking on digits
  msgan train model=mlp dataset=grid25 reg=none
  msgan train -m reg=none,ms seed=0,1,2    # a sweep
  msgan train --help                       # every config group and option
  eval "$(msgan train -sc install=bash)"   # <TAB> completion of commands, groups and options in bash
"""

HYDRA_FLAGS_SHOWING_CONFIG = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help")
SHELL_COMPLETION = ("--shell-completion", "-sc")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] in SHELL_COMPLETION:   # what the installed completion runs on <TAB>: `msgan -sc query=bash`
        return complete(argv)
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
    except KeyboardInterrupt:   # a second Ctrl-C during training, or one before or after it: no traceback
        print(f"msgan {command}: interrupted" + ("; the run's last checkpoint, if it had written one, stays: run "
                                                 "the same command again to resume." if command == "train" else "."),
              file=sys.stderr)
        return 130
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


def complete(argv: list[str]) -> int:
    """Shell completion (completion.py): msgan's own answers, or Hydra's for `msgan train ...`."""
    from msgan_cli.completion import query
    answers = query(os.environ.get("COMP_LINE", "")) if "query=bash" in argv else None
    if answers is None:
        return run_train(argv)
    print(" ".join(answers))
    return 0


def run_train(options: list[str]) -> int:
    """Hand the options to the Hydra app, after the msgan-specific preparation of the overrides.
    Hydra's own errors (a config group option that does not exist, a bad override) exit 2 like msgan's;
    1 stays for a run that crashed."""
    from msgan_cli import commands
    from msgan_cli.config import (
        check_launcher_installed,
        check_output_location,
        check_override_grammar,
        check_reg_choices,
        first_run_of_sweep,
        given_output_dir,
        normalize_overrides,
        with_search_defaults,
    )

    options = normalize_overrides(options)
    check_override_grammar(options)
    check_reg_choices(options)
    check_launcher_installed(options)
    options = with_search_defaults(options)
    multirun = any(o in ("-m", "--multirun") for o in options)
    shows_config = any(o in HYDRA_FLAGS_SHOWING_CONFIG for o in options)
    if multirun and shows_config:   # Hydra refuses both with a ValueError traceback: show the first run's
        options = first_run_of_sweep(options)
        print("# msgan: the configuration of the sweep's first run", file=sys.stderr)
    elif not shows_config and not any(o in SHELL_COMPLETION for o in options):
        from msgan_cli.core.distributed import init_process_group
        from msgan_cli.train.runlock import check_not_in_use
        check_output_location(options, multirun)
        run_dir = None if multirun else given_output_dir(options, multirun)
        if run_dir is not None:
            check_not_in_use(Path(run_dir))   # before Hydra rewrites its .hydra/
        options = share_run_dir(options, init_process_group())
    sys.argv = ["msgan", *options]   # Hydra's completion installs itself for the program named here
    try:
        commands.train_main()
    except SystemExit as stop:   # Hydra reports its errors, and a crashed run, with exit status 1
        if stop.code == 1 and not commands.TRAINING_CRASHED:
            return 2
        raise
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

    from msgan_cli.core.distributed import broadcast_object
    if not any(o.startswith("hydra.run.dir=") for o in options):
        run_dir = broadcast_object(datetime.now().strftime("outputs/%Y-%m-%d/%H-%M-%S"))
        options = options + [f"hydra.run.dir={run_dir}"]
    if not info.is_main:
        options = options + ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    return options


if __name__ == "__main__":
    sys.exit(main())
