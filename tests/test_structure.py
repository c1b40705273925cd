"""The package's shape, read from its source (AST): no import cycles, no helpers imported out of
vocflow.train, models that know no config and no dataset, the pure modules pure, no hidden
function-level imports, no snakemake; the rule files formatted and the scripts thin."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "vocflow"
# Function-level imports that are allowed, each for the reason given: optional or heavy
# dependencies that most importers of the module never use.
LAZY_IMPORTS = {
    "vocflow.atomic": {"torch"},  # torch_save only: light rules write csv/yaml without torch
    "vocflow.cluster": {"submitit"},  # the driver submission only
    "vocflow.models.lite": {"efficientnet_lite_pytorch"},  # optional package, named on failure
    # smp pulls in timm and huggingface_hub (~1.5 CPU-s): only jobs building its models pay
    "vocflow.models.smp": {"segmentation_models_pytorch"},
    # each `vocflow` command imports what it runs: `vocflow submit` must not pay for torch
    "vocflow.cli": {"vocflow.data.synthetic", "vocflow.data.formats", "vocflow.rle",
                    "vocflow.random_search", "vocflow.grid", "vocflow.models.weights",
                    "vocflow.cluster", "vocflow.apply", "vocflow.plan",
                    "vocflow.status"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(imported module, at function level?) of every import statement in ``path``; names
    imported from a package resolve to its submodule when one exists."""
    tree = ast.parse(path.read_text())
    nested = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
              for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in nested
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                yield (sub if sub in MODULES else node.module), id(node) in nested


def package_graph() -> dict[str, set[str]]:
    return {name: {m for m, _ in imports(path) if m in MODULES and m != name}
            for name, path in MODULES.items()}


def test_no_import_cycles() -> None:
    graph, state, path = package_graph(), {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            # A package's __init__ importing its own submodules is how registries fill up.
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_nothing_imports_helpers_out_of_train() -> None:
    users = sorted(m for m, deps in package_graph().items() if "vocflow.train" in deps)
    assert users == [], f"{users} import vocflow.train; move the helper below both"


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("vocflow.models", ("vocflow.config", "vocflow.grid", "vocflow.data", "vocflow.train")),
    ("vocflow.data", ("vocflow.models", "vocflow.grid", "vocflow.losses", "vocflow.train")),
    ("vocflow.losses", ("vocflow.models", "vocflow.grid", "vocflow.data")),
    ("vocflow.artifacts", ("torch", "vocflow.data", "vocflow.models", "vocflow.grid")),
    ("vocflow.catalog", ("torch", "vocflow.models", "vocflow.losses")),
])
def test_layers_know_nothing_above_them(layer: str, forbidden: tuple[str, ...]) -> None:
    for name, path in MODULES.items():
        if name == layer or name.startswith(layer + "."):
            bad = [m for m, _ in imports(path) if m.startswith(forbidden)]
            assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize(("module", "allowed"), [
    ("vocflow.metrics", {"vocflow.artifacts"}),
    ("vocflow.rle", {"vocflow.errors", "vocflow.atomic", "vocflow.metrics"}),
    ("vocflow.errors", set()),
    ("vocflow.atomic", set()),
])
def test_pure_modules_stay_pure(module: str, allowed: set[str]) -> None:
    ours = {m for m, _ in imports(MODULES[module]) if m.startswith("vocflow")}
    assert ours <= allowed, f"{module} imports {sorted(ours - allowed)}"


def test_function_level_imports_are_the_listed_lazy_ones() -> None:
    found: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        lazy = {m for m, nested in imports(path) if nested}
        if lazy:
            found[name] = lazy
    assert found == LAZY_IMPORTS


def test_package_never_imports_snakemake() -> None:
    users = sorted(n for n, p in MODULES.items() if any(m.split(".")[0] == "snakemake"
                                                          for m, _ in imports(p)))
    assert users == []


def test_every_module_imports_alone() -> None:
    """Each module imports with no other vocflow module loaded before it (no hidden
    import-order dependency); one interpreter, vocflow's modules dropped between imports."""
    code = ("import importlib, sys\nfor m in sys.argv[1:]:\n"
            "    for k in [k for k in sys.modules if k.split('.')[0] == 'vocflow']:\n"
            "        del sys.modules[k]\n"
            "    importlib.import_module(m)\n")
    result = subprocess.run([sys.executable, "-c", code, *MODULES], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-1500:]


# The modules behind the aggregation jobs (leaderboard, select, baseline, submission, score,
# thresholds, report): every job starts its own interpreter, and torch (~1 CPU-s) or
# scikit-learn (~0.7 CPU-s) imported for nothing is paid once per job.
LIGHT_JOBS = ("vocflow.leaderboard", "vocflow.baseline", "vocflow.submission",
              "vocflow.thresholds", "vocflow.evaluation", "vocflow.data.folds")


@pytest.mark.parametrize("module", LIGHT_JOBS)
def test_aggregation_modules_import_no_torch(module: str) -> None:
    code = (f"import sys, {module}\n"
            "heavy = {'torch', 'torchvision', 'sklearn', 'albumentations'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"{module}: " + result.stderr[-300:]


def test_scripts_call_package_functions_with_keywords() -> None:
    """workflow/scripts: set up logging, then call one vocflow function with keyword arguments
    only (positional ones break silently when a signature changes)."""
    for script in sorted((REPO / "workflow" / "scripts").glob("*.py")):
        tree = ast.parse(script.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name) and n.func.id != "setup_logging"
                 and n.func.id[0].islower() and n.func.id not in {"Path", "list", "int"}]
        assert calls, script.name
        for call in calls:
            assert not call.args, f"{script.name}: {call.func.id}() takes positional arguments"


def test_rule_files_are_snakefmt_formatted() -> None:
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile",
                             "workflow/rules"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_ruff_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "workflow", "tests",
                             "bench"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
