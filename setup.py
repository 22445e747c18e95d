"""Packaging detail that pyproject.toml cannot express: the top-level `conf/` folder ships inside
the wheel as the package `msgan_cli.conf`, so an installed `msgan` finds its configs anywhere."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["msgan_cli", "msgan_cli.*"]) + ["msgan_cli.conf"],
    package_dir={"msgan_cli.conf": "conf"},
    package_data={"msgan_cli.conf": ["*.yaml", "*/*.yaml", "*/*/*.yaml"]},
)
