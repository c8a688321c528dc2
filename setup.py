"""Packages are found, not listed: everything under transpose_live/, cli/ and ui/ that has an __init__.py.

cli/ and ui/ sit at the top of the repository (the product's layout) but install as transpose_live.cli and
transpose_live.ui; setuptools' own `packages.find` cannot rename a folder, so the three trees are found here.
The rest of the metadata is in pyproject.toml.
"""

from setuptools import find_packages, setup

TREES = {"transpose_live": "transpose_live", "transpose_live.cli": "cli", "transpose_live.ui": "ui"}


def _found(package: str, folder: str) -> list[str]:
    return [package] + [f"{package}.{sub}" for sub in find_packages(folder)]


setup(
    package_dir=TREES,
    packages=[name for package, folder in TREES.items() for name in _found(package, folder)],
)
