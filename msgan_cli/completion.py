"""Shell completion for `msgan`, on Hydra's protocol: `eval "$(msgan train -sc install=bash)"` installs
Hydra's bash function for the `msgan` command; on <TAB> it runs `msgan -sc query=bash` with the line
typed so far in COMP_LINE and offers the words printed.

Hydra completes the config of one app, and `msgan` is several commands: this module completes the
command's name itself, hands `msgan train ...` to Hydra's completion of the train config (groups,
options, keys), and offers the `key=` options of eval, sample and report.
"""
from __future__ import annotations

import os
from importlib import resources

from omegaconf import OmegaConf

from msgan_cli.config import CONFIG_MODULE

COMMANDS = ("train", "eval", "sample", "report", "train-classifier")


def words_typed(line: str) -> tuple[list[str], str]:
    """The finished words of the line after the program's name, and the word being typed ('' after a space)."""
    words = line.split()[1:]
    if line.endswith(" ") or not words:
        return words, ""
    return words[:-1], words[-1]


def command_options(command: str) -> list[str]:
    """`key=` for each option of a command's own config (eval.yaml, sample.yaml); none for the rest."""
    config = resources.files(CONFIG_MODULE) / f"{command}.yaml"
    if not config.is_file():
        return []
    return [f"{key}=" for key in OmegaConf.load(config.open())]


def query(line: str) -> list[str] | None:
    """The completions of `line` (as bash passes it in COMP_LINE), or None when Hydra's completion of the
    train config should answer: COMP_LINE is then rewritten to what Hydra expects, `msgan <options>`."""
    done, typing = words_typed(line)
    if not done:
        return [command for command in COMMANDS if command.startswith(typing)]
    command = done[0]
    if command == "train":
        os.environ["COMP_LINE"] = " ".join([line.split()[0], *done[1:], typing])   # ends in a space if typing is ''
        return None
    return [option for option in command_options(command) if option.startswith(typing)]
