"""The layers point one way. Application code (the packages the wheel ships) never imports
the development tools (tests, scripts, the MX stand-in); the development tools outside
``tests`` (scripts, the stand-in) never import the tests; the services share code only through
``common``; inside the worker, the operator commands sit on top of their helpers
(``worker.ops``), never the other way round; and no two parts of the application import each
other. Read from the source with ``ast``: nothing is imported or executed."""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPLICATION = ("common", "dashboard", "webhook", "worker")  # what the wheel ships
DEV_TOOLS = ("tests", "scripts", "mxstandin")
# (importer, imported): a module of the first may not import anything of the second
FORBIDDEN = [
    ("common", "webhook"),
    ("common", "worker"),
    ("common", "dashboard"),
    ("webhook", "worker"),
    ("webhook", "dashboard"),
    ("worker", "webhook"),
    ("worker", "dashboard"),
    ("worker.ops", "worker.commands"),
    ("worker.mx", "worker.commands"),
    ("worker.mx", "worker.ops"),
]


def shipped_packages() -> list[str]:
    """Top-level packages the wheel ships (pyproject's setuptools include list)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({p.removesuffix(".*").removesuffix("*") for p in patterns})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def application_imports() -> list[tuple[str, int, str, str]]:
    """(file, line, importing module, imported module) for every import in shipped code."""
    rows = []
    for package in APPLICATION:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, target in imports_of(path):
                rows.append((str(path.relative_to(ROOT)), line, module_name(path), target))
    assert rows, "no import found in the application packages: every check would pass on nothing"
    return rows


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_wheel_ships_application_packages_only() -> None:
    assert shipped_packages() == sorted(APPLICATION), "pyproject.toml packages other code"


def test_application_code_never_imports_development_tools() -> None:
    bad = [
        f"{file}:{line} imports {target}"
        for file, line, _, target in application_imports()
        if any(within(target, tool) for tool in DEV_TOOLS)
    ]
    assert not bad, "application code imports a development tool:\n" + "\n".join(bad)


def test_scripts_and_the_standin_never_import_the_tests() -> None:
    """What the tests share with the development tools (the demo world, the pipeline drivers,
    Chromium's options) lives in ``scripts`` and the tests import it, not the other way."""
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for package in ("scripts", "mxstandin")
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, target in imports_of(path)
        if within(target, "tests")
    ]
    assert not bad, "a development tool imports the tests:\n" + "\n".join(bad)


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN, ids=lambda x: str(x))
def test_layers_point_one_way(importer: str, imported: str) -> None:
    imports = application_imports()
    assert any(within(module, importer) for _, _, module, _ in imports), f"no module {importer}"
    bad = [
        f"{file}:{line} imports {target}"
        for file, line, module, target in imports
        if within(module, importer) and within(target, imported)
    ]
    assert not bad, f"{importer} must not import {imported}:\n" + "\n".join(bad)


def part_of(module: str) -> str:
    """The part a module belongs to: its subpackage (worker.ops, worker.mx, ...) or, for a
    top-level module of a package (worker.consumer), the package itself."""
    parts = module.split(".")
    if len(parts) >= 2 and (ROOT / parts[0] / parts[1]).is_dir():
        return ".".join(parts[:2])
    return parts[0]


def test_no_two_parts_of_the_application_import_each_other() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], str] = {}
    for file, line, module, target in application_imports():
        if target.split(".")[0] not in APPLICATION:
            continue
        source, dest = part_of(module), part_of(target)
        # a package's own modules and its __main__ (the entry point) may use every part of it
        if source != dest and not module.endswith("__main__") and dest != source.split(".")[0]:
            edges[source].add(dest)
            where.setdefault((source, dest), f"{file}:{line}")
    cycles = sorted(
        f"{a} <-> {b} ({where[(a, b)]}, {where[(b, a)]})"
        for a in edges
        for b in edges[a]
        if a < b and a in edges.get(b, set())
    )
    assert not cycles, "parts importing each other:\n" + "\n".join(cycles)
