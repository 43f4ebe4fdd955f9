"""The architecture as a test: every import (function-local ones too) points down the layers,
and no module or package imports itself back in a circle.

Layers of ``tper_jit`` (a module may import its own layer and those above it in this list):

    base    seed_axis, stats, summary, plots   (no trainer imports)
    config  config/                            (flags, presets)
    data    data/
    replay  replay/
    agents  agents/
    oper    oper/
    tasks   tasks/                             (resolver, MJX / host envs, evaluation)
    loop    loop/                              (learn_step, offline, online, host, seeds)
    run     run/                               (train, driver, logger, checkpoints, resume)
    app     cli, bench/, __main__ modules      (entry points)

``envs_mjx`` is a separate package below ``tasks``: it never imports ``tper_jit``.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYERS = ("base", "config", "data", "replay", "agents", "oper", "tasks", "loop", "run", "app")
BASE = {"seed_axis", "stats", "summary", "plots"}
APP = {"cli", "bench", "__main__"}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for pkg in ("tper_jit", "envs_mjx"):
        for p in (ROOT / pkg).rglob("*.py"):
            parts = p.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = p
    return out


MODULES = _modules()


def _imports(name: str, path: pathlib.Path) -> set[str]:
    """Project modules imported anywhere in the file (resolved to the longest known name)."""
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            cands = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for c in cands:
            while c and c not in MODULES:
                c = c.rpartition(".")[0]
            if c and c != name and not name.startswith(c + "."):
                found.add(c)
    return found


GRAPH = {n: _imports(n, p) for n, p in MODULES.items()}


def layer(name: str) -> str | None:
    """The layer of a ``tper_jit`` module (None for ``envs_mjx``)."""
    parts = name.split(".")
    if parts[0] != "tper_jit":
        return None
    if parts[-1] == "__main__" or (len(parts) > 1 and parts[1] in APP):
        return "app"
    if len(parts) == 1:
        return "base"
    if parts[1] in BASE:
        return "base"
    assert parts[1] in LAYERS, f"{name}: add its package to the layer list of this test"
    return parts[1]


def test_every_module_has_a_layer():
    for name in MODULES:
        if name != "tper_jit":
            layer(name)


def test_imports_point_down_the_layers():
    bad = []
    for name, deps in GRAPH.items():
        mine = layer(name)
        for d in deps:
            theirs = layer(d)
            if mine is None:  # envs_mjx
                if theirs is not None:
                    bad.append(f"{name} -> {d} (envs_mjx must not import tper_jit)")
            elif theirs is not None and d != "tper_jit" and (
                    LAYERS.index(theirs) > LAYERS.index(mine)):
                bad.append(f"{name} ({mine}) -> {d} ({theirs})")
            elif theirs is None and LAYERS.index(mine) < LAYERS.index("tasks"):
                bad.append(f"{name} ({mine}) -> {d} (only tasks and above use envs_mjx)")
    assert not bad, "imports against the layer order:\n  " + "\n  ".join(sorted(bad))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(root):
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _without_init_reexports(graph):
    # A package's __init__ importing its own children is not a circle of design.
    return {n: {d for d in deps if not (MODULES[d].name == "__init__.py"
                                        and n.startswith(d + "."))}
            for n, deps in graph.items()}


def test_no_module_circles():
    assert _cycles(_without_init_reexports(GRAPH)) == []


def test_no_package_circles():
    top = lambda n: ".".join(n.split(".")[:2])  # noqa: E731
    pgraph: dict[str, set[str]] = {}
    for n, deps in _without_init_reexports(GRAPH).items():
        pgraph.setdefault(top(n), set()).update(top(d) for d in deps if top(d) != top(n))
    assert _cycles(pgraph) == []


@pytest.mark.parametrize("graph, expect", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_finder_finds_cycles(graph, expect):
    assert _cycles(graph) == expect


def test_the_layer_check_catches_an_upward_import():
    # replay importing the loop would be against the order
    assert LAYERS.index(layer("tper_jit.loop.learn_step")) > LAYERS.index(
        layer("tper_jit.replay.samplers"))
    assert layer("tper_jit.oper.__main__") == "app" and layer("tper_jit.plots") == "base"


def test_no_isinstance_dispatch_on_agent_configs():
    """Agents are driven through agents.registry; an ``isinstance(x, SomeConfig)`` chain would
    silently run an unregistered agent as another one."""
    hits = []
    for name, path in MODULES.items():
        if name.startswith("tper_jit"):
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if "isinstance(" in line and "Config" in line.split("isinstance(", 1)[1]:
                    hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, "\n".join(hits)
