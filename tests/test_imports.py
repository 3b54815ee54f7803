"""How the code reaches itself: `core`'s parts depend one way, each module imports alone, and
tests and benchmarks import `core` instead of editing ``sys.path``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    """The part of `core` a module belongs to: ``core.<top-level module or subpackage>``."""
    return ".".join(module.split(".")[:2])


def _imported(path: Path) -> set[str]:
    """Absolute module names a file imports anywhere (module level or inside a function)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _core_graph() -> dict[str, set[str]]:
    """{part: parts it imports}, function-level (lazy) imports included."""
    files = list(CORE.rglob("*.py"))
    parts = {_part(_module_name(path)) for path in files} - {"core"}
    graph: dict[str, set[str]] = {part: set() for part in parts}
    for path in files:
        src = _part(_module_name(path))
        if src in graph:
            graph[src].update({_part(m) for m in _imported(path)} & parts - {src})
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One dependency cycle as a path [a, b, ..., a], or [] if there is none."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return []


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_core_parts_depend_one_way():
    """No two parts of `core` import each other, not even through a lazy import inside a function
    (the datasets and the property calculators share `core.lammps` instead)."""
    graph = _core_graph()
    assert {"core.datasets", "core.properties", "core.lammps", "core.material"} <= set(graph)
    assert "core.lammps" in graph["core.datasets"] and "core.lammps" in graph["core.properties"]
    assert _cycle(graph) == [], f"import cycle in core: {' -> '.join(_cycle(graph))}"


def test_core_never_imports_the_studio_or_the_benchmarks():
    for path in CORE.rglob("*.py"):
        outside = {m for m in _imported(path) if m.split(".")[0] in ("studio", "benchmarks", "tests")}
        assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}"


def test_every_core_module_imports_alone():
    """Each module of `core` imported first, in a fresh interpreter with no other `core` module
    loaded: an import cycle shows up as an ImportError from whichever side it is entered."""
    modules = sorted(_module_name(p) for p in CORE.rglob("*.py"))
    code = (
        "import importlib, sys, traceback\n"
        f"failed = []\nfor name in {modules!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'core' or m.startswith('core.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert len(modules) > 40


def test_tests_benchmarks_and_scripts_do_not_edit_sys_path():
    edits = []
    for folder in ("tests", "benchmarks", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                target = node.func.value if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    else None
                if isinstance(target, ast.Attribute) and target.attr == "path" and \
                        isinstance(target.value, ast.Name) and target.value.id == "sys":
                    edits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert edits == []


def test_every_framework_name_makes_its_framework():
    """`core.catalog.FRAMEWORKS` is the one list of names; `core.frameworks` builds each."""
    from core.catalog import FRAMEWORKS
    from core.frameworks import FRAMEWORKS as reexported
    from core.frameworks import default_config, make_framework

    assert reexported is FRAMEWORKS == ("shortcut", "sde", "ode")
    assert [make_framework(default_config(name)).name for name in FRAMEWORKS] == list(FRAMEWORKS)
