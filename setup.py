"""Package discovery for greenfoundry: nothing here is a list someone has to keep.

`greenfoundry/` is the package. Every other top-level folder with an `__init__.py` (the user's
`ingest/`, `metrics/`, `scoring/`, `sim/`, `config/` …) is installed as a subpackage of it
(`greenfoundry.ingest` is `ingest/`), so nothing generic such as `metrics` lands in
site-packages. Inside each, every folder is a package and every file that is not Python source
is package data, so a new module, folder or data file cannot be left out of the wheel or the
sdist. `tests/` and `bench/` are not part of the package. `tests/kernel/test_packaging.py`
builds both and checks them against the tree.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
NOT_INSTALLED = {"tests", "bench"}
# var/ holds run-time state (spool, dead letters, a demo's servers) wherever a config points
# it, never source: .gitignore says the same.
SKIP_DIRS = {"__pycache__", "var"}
SKIP_SUFFIXES = {".py", ".pyc", ".pyo"}


def package_roots() -> dict[str, str]:
    roots = {"greenfoundry": "greenfoundry"}
    for entry in sorted(HERE.iterdir()):
        if (
            entry.is_dir()
            and entry.name not in NOT_INSTALLED
            and entry.name != "greenfoundry"
            and (entry / "__init__.py").is_file()
        ):
            roots[f"greenfoundry.{entry.name}"] = entry.name
    return roots


def discover() -> tuple[list[str], dict[str, list[str]]]:
    packages: list[str] = []
    data: dict[str, list[str]] = {}
    for name, folder in package_roots().items():
        for dirpath, dirnames, filenames in os.walk(HERE / folder):
            dirnames[:] = sorted(
                d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
            )
            rel = Path(dirpath).relative_to(HERE / folder)
            package = ".".join((name, *rel.parts))
            packages.append(package)
            files = sorted(
                f
                for f in filenames
                if Path(f).suffix not in SKIP_SUFFIXES and not f.startswith(".")
            )
            if files:
                data[package] = files
    return packages, data


PACKAGES, PACKAGE_DATA = discover()

setup(
    package_dir=package_roots(),
    packages=PACKAGES,
    package_data=PACKAGE_DATA,
    include_package_data=False,
)
