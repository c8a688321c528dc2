"""The house rules as tests: the layers import-linter checks (and that a wrong-way import really breaks them), no
import circle anywhere in transpose_live/, cli/ and ui/, no private name imported across modules, nothing of the
library importing the front ends or tools/, and no module over ~500 lines without a stated reason."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

# the three trees and the package names they install as (cli/ and ui/ are mapped into transpose_live)
TREES = {"transpose_live": REPO / "transpose_live", "transpose_live.cli": REPO / "cli",
         "transpose_live.ui": REPO / "ui"}
MAX_LINES = 500
REASON = "Over 500 lines:"        # what a bigger module's docstring says, followed by why


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in TREES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int, list[str]]]:
    """(imported module, line, names taken from it) for every import in the file, a `from pkg import submodule`
    counted as an import of the submodule (as Python runs it)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = (base + "." + node.module if node.module else base) if node.level else (node.module or "")
            plain = []
            for alias in node.names:
                if f"{module}.{alias.name}" in MODULES:
                    out.append((f"{module}.{alias.name}", node.lineno, []))
                else:
                    plain.append(alias.name)
            if plain:
                out.append((module, node.lineno, plain))
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _python_env() -> dict[str, str]:
    return dict(os.environ, PYTHONDONTWRITEBYTECODE="1")


def _lint_imports(cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """lint-imports with the repository's contracts; it looks for the package from `cwd` first."""
    tool = Path(sys.executable).with_name("lint-imports")
    if not tool.exists():
        pytest.skip("lint-imports is not installed (pip install -e '.[dev]')")
    return subprocess.run([str(tool), "--no-cache", "--config", str(REPO / "pyproject.toml")], cwd=cwd,
                          capture_output=True, text=True, env=env or _python_env(), timeout=240)


@pytest.mark.slow
def test_import_linter_contracts_are_kept():
    run = _lint_imports()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout
    # the layers contract has at least five layers
    import tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = [c for c in contracts if c["type"] == "layers"]
    assert layers and max(len(c["layers"]) for c in layers) >= 5


@pytest.mark.slow
def test_a_wrong_way_import_breaks_the_layers_contract(tmp_path):
    """A copy of the library where the model imports the run API (a climb of two layers): lint-imports must fail
    and name that import."""
    copy = tmp_path / "transpose_live"
    shutil.copytree(REPO / "transpose_live", copy, ignore=shutil.ignore_patterns("__pycache__", "assets"))
    config = copy / "model" / "config.py"
    config.write_text(config.read_text() + "\nfrom transpose_live.live import run  # noqa: E402  (the wrong way)\n")
    env = _python_env()
    env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env.get("PYTHONPATH", "")
    probe = subprocess.run([sys.executable, "-c", "import transpose_live; print(transpose_live.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert probe.stdout.strip() == str(copy / "__init__.py"), probe.stdout + probe.stderr   # the copy is the one seen
    run = _lint_imports(cwd=tmp_path, env=env)
    assert run.returncode != 0
    assert "transpose_live.model.config -> transpose_live.live.run" in run.stdout, run.stdout[-3000:]


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), over every import."""
    edges = {name: sorted({m for m, _, _ in imports if m in MODULES and m != name}) for name, imports in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_in_library_cli_or_window():
    assert _cycles() == []


def test_the_cycle_finder_finds_a_circle():
    """The check above can fail: two modules importing each other are one component."""
    saved = dict(GRAPH)
    try:
        GRAPH["transpose_live.errors"] = [*GRAPH["transpose_live.errors"], ("transpose_live.types", 1, [])]
        GRAPH["transpose_live.types"] = [*GRAPH["transpose_live.types"], ("transpose_live.errors", 1, [])]
        assert ["transpose_live.errors", "transpose_live.types"] in _cycles()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def _front_end(name: str) -> str | None:
    for front in ("transpose_live.cli", "transpose_live.ui"):
        if name == front or name.startswith(front + "."):
            return front
    return None


def test_library_never_imports_the_front_ends_and_the_window_never_the_cli():
    wrong = []
    for name, imports in GRAPH.items():
        here = _front_end(name)
        for module, line, _ in imports:
            there = _front_end(module)
            if there is None or there == here or name == "transpose_live.__main__":
                continue
            if here is None or (here == "transpose_live.ui" and there == "transpose_live.cli"):
                wrong.append(f"{MODULES[name].relative_to(REPO)}:{line} imports {module}")
    assert wrong == []


def test_nothing_imports_tools_or_tests():
    wrong = [f"{MODULES[n].relative_to(REPO)}:{line} imports {m}" for n, imports in GRAPH.items()
             for m, line, _ in imports if m.split(".")[0] in ("tools", "tests", "conftest", "helpers")]
    assert wrong == []


def test_no_private_name_imported_from_another_module():
    wrong = []
    for name, imports in GRAPH.items():
        for module, line, names in imports:
            if not module.startswith("transpose_live") or module == name:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            last = module.rpartition(".")[2]
            if private or (last.startswith("_") and not last.startswith("__")):
                wrong.append(f"{MODULES[name].relative_to(REPO)}:{line} takes {private or last} from {module}")
    assert wrong == []


def test_no_module_over_500_lines_without_a_reason():
    big = []
    for path in MODULES.values():
        lines = path.read_text().count("\n")
        if lines > MAX_LINES:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            if REASON not in doc:
                big.append(f"{path.relative_to(REPO)}: {lines} lines")
    assert big == [], f"split these, or say why in the docstring ('{REASON} ...')"


def test_the_cli_and_option_checks_load_no_heavy_package():
    """`transpose-live --help` and every command's option checks stay cheap: importing the app (all its command
    modules) and checking a run's options load neither torch nor Qt, OpenVINO, PyAV or OpenCV's dnn."""
    code = ("import sys, transpose_live.cli.app\n"
            "from transpose_live.live.spec import RunSpec\n"
            "RunSpec.from_options(model='tp_m_a4', detector='none', backend='auto', precision='auto')\n"
            "print(sorted(m for m in ('torch', 'PyQt6', 'openvino', 'av', 'onnxruntime') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_python_env(),
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"
