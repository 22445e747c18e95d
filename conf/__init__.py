# Makes conf/ importable as `msgan_cli.conf` (see setup.py) so Hydra can load it with pkg://.
