"""Every import points down (docs/ARCHITECTURE.md): each layer, imported in a fresh interpreter, loads nothing of
the layers above it; the static import graph has no cycles and no import that points up a floor."""
import ast
import json
import pathlib
import subprocess
import sys

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "plasticity_search"

# the floors, lowest first: a unit (a subpackage or top-level module of plasticity_search) may import units on
# its own floor or below, never above
FLOORS = {
    "rules": 0, "errors": 0, "distributed": 0, "jit_options": 0, "limits": 0,
    "tasks": 1, "export": 1,
    "rate": 2, "spiking": 2, "models": 2,
    "search": 3,
    "runs": 4,
    "evaluate_cmd": 5, "cli": 5, "__main__": 5,
}

# layer: (what it imports, units it must not load)
LAYERS = {
    "rule language": (["rules"], ["tasks", "rate", "spiking", "models", "search", "runs", "export", "evaluate_cmd",
                                  "cli"]),
    "tasks": (["tasks"], ["rate", "spiking", "models", "search", "runs", "export", "evaluate_cmd", "cli"]),
    "inner loops": (["rate", "spiking", "models", "tasks"], ["search", "runs", "export", "evaluate_cmd", "cli"]),
    "search": (["search"], ["runs", "evaluate_cmd", "cli"]),
    "export": (["export"], ["tasks", "rate", "spiking", "models", "search", "runs", "evaluate_cmd", "cli"]),
}

_LOAD = """
import importlib, json, pkgutil, sys
for name in sys.argv[1:]:
    m = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(m, "__path__", []), name + "."):
        importlib.import_module(info.name)      # every module of the layer, not just its __init__
print(json.dumps(sorted(k for k in sys.modules if k.startswith("plasticity_search."))))
"""


@pytest.mark.parametrize("layer", list(LAYERS))
def test_layer_loads_nothing_above_it(layer):
    units, forbidden = LAYERS[layer]
    r = subprocess.run([sys.executable, "-c", _LOAD, *[f"plasticity_search.{u}" for u in units]],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    loaded = json.loads(r.stdout.strip().splitlines()[-1])
    bad = sorted(m for m in loaded if m.split(".")[1] in forbidden)
    assert not bad, f"importing the {layer} loaded {bad}"


# --- the static import graph ---------------------------------------------------------------------------------
def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _imports(name: str, path: pathlib.Path):
    """(imported module, line, module_level) for every import of a plasticity_search module in ``path``;
    ``from pkg import sub`` counts as an import of ``pkg.sub`` when that is a module."""
    is_pkg = path.name == "__init__.py"
    out = []

    def visit(node, module_level):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
                continue
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, module_level) for a in child.names if a.name in MODULES)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[:len(base) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                for a in child.names:
                    target = f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod
                    if target in MODULES:
                        out.append((target, child.lineno, module_level))
            visit(child, module_level)

    visit(ast.parse(path.read_text()), True)
    return out


def _unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None       # None: the root package plasticity_search itself


def test_every_unit_has_a_floor():
    units = {_unit(m) for m in MODULES} - {None}
    assert units <= set(FLOORS), f"give these a floor in FLOORS and docs/ARCHITECTURE.md: {units - set(FLOORS)}"


def test_every_import_points_down():
    """Module-level and function-local imports alike: a lazy import is no way around the floors."""
    up = []
    for name, path in MODULES.items():
        src = _unit(name)
        for target, line, _ in _imports(name, path):
            dst = _unit(target)
            if src is not None and dst is not None and FLOORS[dst] > FLOORS[src]:
                up.append(f"{path.relative_to(PKG.parent)}:{line} {name} -> {target}")
    assert not up, "imports that point up a floor:\n" + "\n".join(up)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a module that imports itself."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def test_no_import_cycles():
    graph = {name: {t for t, _, module_level in _imports(name, path) if module_level}
             for name, path in MODULES.items()}
    cycles = _cycles(graph)
    assert not cycles, f"module-level import cycles: {cycles}"


def test_module_names_are_unique():
    """One name, one module: no two modules (or a module and a package) of plasticity_search share a name."""
    seen: dict[str, list[str]] = {}
    for name in MODULES:
        if name != "plasticity_search":
            seen.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    dup = {k: v for k, v in seen.items() if len(v) > 1}
    assert not dup, f"module names used twice: {dup}"
