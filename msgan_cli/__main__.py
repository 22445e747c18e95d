"""`python -m msgan_cli ...` is `msgan ...` (what torchrun and SLURM scripts can call)."""
import sys

from msgan_cli.cli import main

sys.exit(main())
