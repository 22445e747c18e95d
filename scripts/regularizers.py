"""The registered regularisers that apply to a model, as the comma list a sweep takes (`reg=none,$(...)`).

Usage: python scripts/regularizers.py [--except unrolled,...] [OVERRIDES ...]
       e.g. python scripts/regularizers.py model=pix2pix   ->   dpm,dsgan,ms,sn,sr
The model (and dataset) the overrides choose is built once, then each registered regulariser's start-up
check (`Regularizer.check`, with the options `reg=<name>` selects) says whether it applies: a new
regulariser joins the sweeps of scripts/reproduce.sh and scripts/grid25_modes.sh without editing them.
`--why` prints, one per line on stderr, why each of the others does not apply.
"""
from __future__ import annotations

import argparse
import sys

from msgan_cli.config import compose_config
from msgan_cli.data import load_dataset
from msgan_cli.errors import UserError
from msgan_cli.models import build_model
from msgan_cli.regularizers import REGULARIZERS, refusal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--except", dest="excluded", default="", help="comma list of regularisers to leave out")
    parser.add_argument("--why", action="store_true", help="say on stderr why each other one does not apply")
    parser.add_argument("overrides", nargs="*", help="what chooses the model, e.g. model=stargan model.nz=8")
    args = parser.parse_args()
    excluded = {name for name in args.excluded.split(",") if name}
    if unknown := sorted(excluded - set(REGULARIZERS)):
        parser.error(f"--except names no registered regulariser: {', '.join(unknown)}")
    try:
        cfg = compose_config("train", args.overrides)
        recipe = build_model(cfg.model, load_dataset(cfg.dataset))
    except UserError as error:
        raise SystemExit(f"regularizers.py: {error}") from None
    applicable = []
    for name in sorted(set(REGULARIZERS) - excluded):
        why = refusal(name, recipe)
        if why is None:
            applicable.append(name)
        elif args.why:
            print(f"{name}: {why}", file=sys.stderr)
    print(",".join(applicable))


if __name__ == "__main__":
    main()
