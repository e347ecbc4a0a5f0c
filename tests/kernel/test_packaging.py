"""The folder is the package: the wheel and the sdist hold every module and data file of the
tree, and an installed (non-editable) greenfoundry runs and finds its standard and its default
files without the source tree.

The expected contents are taken from git (tracked files, and new ones git does not ignore), not
from setup.py's own discovery, so a file that discovery missed fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOT_INSTALLED = {"tests", "bench"}


def _tree_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [Path(p) for p in out.split("\0") if p and (REPO / p).is_file()]


def _package_roots() -> dict[str, str]:
    """Top-level folder → its place in the package: greenfoundry/ itself, and every other
    top-level folder with an __init__.py (as the README's layout says)."""
    roots = {"greenfoundry": "greenfoundry"}
    for entry in REPO.iterdir():
        if (
            entry.is_dir()
            and entry.name not in NOT_INSTALLED
            and (entry / "__init__.py").is_file()
            and entry.name != "greenfoundry"
        ):
            roots[entry.name] = f"greenfoundry/{entry.name}"
    return roots


def expected_in_wheel() -> dict[str, Path]:
    """Installed path → source path, for every file of every package folder."""
    roots = _package_roots()
    want = {}
    for path in _tree_files():
        top = path.parts[0]
        if top in roots and "__pycache__" not in path.parts:
            want["/".join((roots[top], *path.parts[1:]))] = path
    return want


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """The wheel and the sdist, built from a copy of the tree's files: a build/ folder left in
    the working tree by an earlier build would otherwise hand stale files to the wheel."""
    src = tmp_path_factory.mktemp("src")
    for path in _tree_files():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, src / path)
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: build with this environment's setuptools (a dev dependency), so the test
    # needs no network.
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", out],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_the_tree_has_the_packages_the_readme_names():
    # A guard for the expectation itself: if discovery of roots broke, the checks below
    # would compare empty sets.
    assert set(_package_roots()) >= {
        "greenfoundry",
        "ingest",
        "metrics",
        "scoring",
        "sim",
        "config",
    }
    assert "greenfoundry/scoring/standards/t-cfa-0308011.5-2024.yaml" in expected_in_wheel()


def test_the_wheel_holds_every_module_and_data_file_of_the_tree(built):
    wheel, _ = built
    names = set(zipfile.ZipFile(wheel).namelist())
    want = expected_in_wheel()
    missing = sorted(set(want) - names)
    assert not missing, f"not in the wheel: {missing}"
    # Nothing from outside the package folders (tests, bench, run-time state) is installed.
    extra = sorted(
        n
        for n in names
        if not n.startswith("greenfoundry-") and n not in want and not n.endswith("/")
    )
    assert not extra, f"in the wheel but not package files of the tree: {extra}"


def test_the_sdist_holds_every_file_needed_to_build_again(built):
    _, sdist = built
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    want = {str(p) for p in expected_in_wheel().values()}
    want |= {"pyproject.toml", "setup.py", "README.md"}
    missing = sorted(want - names)
    assert not missing, f"not in the sdist: {missing}"


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed (not editable). Its dependencies
    come from this environment's site-packages through a path entry, so nothing is downloaded;
    that entry adds no .pth processing, so the editable install of the source tree stays out."""
    wheel, _ = built
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, capture_output=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
    )
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_installed_package_runs_without_the_source_tree(installed, tmp_path):
    for cmd in (("python", "-m", "greenfoundry", "--help"), ("greenfoundry", "--help")):
        res = _run(installed, *cmd, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert "usage: greenfoundry" in res.stdout
    where = _run(
        installed,
        "python",
        "-c",
        "import greenfoundry, greenfoundry.scoring.standard as s, greenfoundry.config as c;"
        "print(greenfoundry.__file__); print(s.standard_path()); print(c.plant_file())",
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    site = installed.resolve()
    for line in where.stdout.split():
        path = Path(line).resolve()
        assert path.is_file(), line
        assert site in path.parents, f"{line} is not inside the installed environment"
        assert REPO not in path.parents, f"{line} reaches into the source tree"


def test_the_installed_package_reads_its_standard(installed, tmp_path):
    # `standard check` loads and validates the standard's file shipped as package data; the
    # weights in force sum to 1000 (Table 1 of T/CFA 0308011.5-2024).
    res = _run(installed, "greenfoundry", "standard", "check", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "1000" in res.stdout
