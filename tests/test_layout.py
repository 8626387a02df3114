"""The house plan, checked: imports point down only, one owner per concept, small functions,
modules and lines, console commands that exist."""

from __future__ import annotations

import ast
import configparser

import pytest

from conftest import ROOT

PACKAGE = ROOT / "srcnn_tf"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 410
MAX_LINE_CHARS = 100


def _modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text()) for p in sorted(PACKAGE.glob("*.py"))
            if p.stem != "__init__"}


def _imports(tree: ast.Module) -> set[str]:
    """Every module this one imports, at module level or inside functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            if node.module == "srcnn_tf":
                out |= {f"srcnn_tf.{a.name}" for a in node.names}
    return out


def _graph() -> dict[str, set[str]]:
    return {name: {m.split(".")[1] for m in _imports(tree) if m.startswith("srcnn_tf.")}
            for name, tree in _modules().items()}


def test_no_import_cycle_in_the_library():
    graph, state = _graph(), {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", "import cycle: " + " -> ".join(path + [node])
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            visit(dep, path + [node])
        state[node] = "done"

    for name in graph:
        visit(name, [])


def test_layering():
    graph = _graph()
    everything = {name: _imports(tree) for name, tree in _modules().items()}
    for name, imported in everything.items():
        assert not any(m.startswith(("pipelines", "absl.flags")) for m in imported), name
    assert "export" not in graph["evaluate"] and "evaluate" not in graph["export"]
    assert graph["imaging"] == set() and graph["metrics"] == set()
    assert graph["architecture"] == set()
    assert graph["model"] == {"architecture"}, "the builder knows nothing of data or storage"
    for low in ("records", "sources", "patches", "data", "model", "predictors", "runs"):
        assert not graph[low] & {"train", "evaluate", "export", "tflite", "upscale"}, low


@pytest.mark.parametrize("name", sorted(_modules()))
def test_small_functions_and_modules(name):
    path = PACKAGE / f"{name}.py"
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES
    for node in ast.walk(_modules()[name]):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{name}.{node.name}: {length} lines"


def test_short_lines():
    long = [f"{p.relative_to(ROOT)}:{i}" for folder in ("srcnn_tf", "pipelines", "tests",
                                                       "benchmarks")
            for p in sorted((ROOT / folder).glob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if len(line) > MAX_LINE_CHARS]
    assert not long, f"lines over {MAX_LINE_CHARS} characters: {long}"


def test_console_commands_point_at_runnable_pipelines():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    scripts = [line.split("=") for line in
               cfg["options.entry_points"]["console_scripts"].strip().splitlines()]
    assert {name.strip() for name, _ in scripts} >= {
        "srcnn-records", "srcnn-train", "srcnn-export", "srcnn-upscale", "srcnn-evaluate"}
    readme = (ROOT / "README.md").read_text()
    assert [n for n, _ in scripts if f"`{n.strip()}`" not in readme] == []  # each one documented
    assert cfg["options"]["package_dir"].split() == ["srcnn_tf_pipelines", "=", "pipelines"]
    for _, target in scripts:  # each pipeline defines its flags: read them, do not import all
        module, func = target.strip().split(":")
        tree = ast.parse((ROOT / "pipelines" / f"{module.split('.')[-1]}.py").read_text())
        assert func in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, target
