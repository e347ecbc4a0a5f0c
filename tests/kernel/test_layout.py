"""The README's layout table is the map of the tree, and the tests reach the package only as
`greenfoundry.*`."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _layout_rows() -> list[tuple[list[str], str]]:
    section = README.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or cells[0] in ("folder", "") or set(cells[0]) <= {"-"}:
            continue
        rows.append((re.findall(r"`([^`]+)/`", cells[0]), cells[1]))
    return rows


def _top_level_folders() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return {p.split("/", 1)[0] for p in out if "/" in p}


def test_the_layout_table_names_every_folder_of_the_tree_and_no_other():
    named = [f for folders, _ in _layout_rows() for f in folders]
    assert len(named) == len(set(named)), f"a folder is named twice: {named}"
    tree = _top_level_folders()
    assert set(named) == tree, (
        f"in the tree, not in the README: {sorted(tree - set(named))}; "
        f"in the README, not in the tree: {sorted(set(named) - tree)}"
    )


def test_the_layout_table_says_which_package_each_folder_is():
    for folders, what in _layout_rows():
        for folder in folders:
            # tests/ is a package for pytest, not part of greenfoundry (setup.py).
            is_package = folder != "tests" and (REPO / folder / "__init__.py").is_file()
            says = re.match(r"`(greenfoundry[\w.]*)`", what)
            if is_package:
                want = "greenfoundry" if folder == "greenfoundry" else f"greenfoundry.{folder}"
                assert says and says.group(1) == want, f"{folder}/ is {want}: {what}"
            else:
                assert not says, f"{folder}/ is not a package, the README says {says.group(1)}"


def test_the_modules_the_layout_names_exist():
    for folders, what in _layout_rows():
        for module in re.findall(r"`(\w+)\.py`", what):
            assert any((REPO / f / f"{module}.py").is_file() for f in folders), module


def test_tests_and_benchmarks_import_the_package_only_as_greenfoundry():
    # One copy of each module: `import ingest` would load ingest/ a second time, beside
    # greenfoundry.ingest, with its own module state.
    folders = {f for folders, _ in _layout_rows() for f in folders}
    for path in [*REPO.glob("tests/**/*.py"), *REPO.glob("bench/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top == "greenfoundry" or top not in folders - {"tests"}, (
                    f"{path.relative_to(REPO)} imports {name}"
                )
