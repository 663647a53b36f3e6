"""Imports flow one way: from the pages and the API down to the services, then to the collectors, the database and
the OEE mathematics, never back up, and no two modules import each other (directly or round a circle).

Every package has a layer below; a module may import its own package and any package of a lower layer. Imports
inside functions and under TYPE_CHECKING count too: a lazy import that climbs is still a climb. A new top-level
package fails here until it is given its layer (and a line in the README's "Where things are").
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A package may import its own layer's packages only where SIDEWAYS allows it.
LAYERS = [
    {"oee", "keys", "plant", "sparkplug"},  # pure OEE mathematics; master key and PLC credential cipher; the
                                            # simulator; the Sparkplug B codec and topic names
    {"db"},                              # storage: models, migrations, writer, queries
    {"collectors"},                      # PLC drivers, polling, the machine model
    {"config", "live", "auth", "exports", "uns", "alerting"},  # services: configuration, live updates, access,
    #                                      export formats, the plant published to MQTT, alert rules at work
    {"processes"},                       # what runs where: the runtime, the collector and plant processes
    {"components", "api"},               # Dash building blocks; HTTP for scripts (/api, /export, /healthz)
    {"pages"},                           # the Dash pages
    {"commands"},                        # python app.py create-admin, grafana-role, oee-summary
    {"app"},                             # the composition root: python app.py
    {"wsgi", "gunicorn_conf"},           # gunicorn's entry and settings
]
# (importer, imported) pairs of one layer that may import each other: the simulated plant's Sparkplug B edge node
# encodes its payloads with the codec
SIDEWAYS: set[tuple[str, str]] = {("plant", "sparkplug")}
NOT_CHECKED = {"tests", "bench"}  # tests and benchmarks may reach anything
LAYER = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0].startswith(".") or rel.parts[0] in {"venv", "data", "build"}:
            continue
        parts = list(rel.with_suffix("").parts)
        if len(parts) == 1:
            parts = [parts[0].replace(".", "_")]  # gunicorn.conf.py
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported project module, line) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod when there is one
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.append((name, node.lineno))
    return found


def _graph() -> dict[str, list[tuple[str, int]]]:
    known = _modules()
    return {m: _imports(m, p, known) for m, p in known.items()}


def _top(module: str) -> str:
    return module.split(".")[0]


def test_every_package_has_a_layer():
    tops = {_top(m) for m in _modules()} - NOT_CHECKED
    assert sorted(tops - set(LAYER)) == [], "give the new package a layer in tests/test_layers.py (and the README)"


def test_imports_never_climb():
    climbs = []
    for module, imports in _graph().items():
        src = _top(module)
        if src in NOT_CHECKED or src not in LAYER:
            continue
        for target, line in imports:
            dst = _top(target)
            if dst == src or dst not in LAYER:
                continue
            if LAYER[dst] > LAYER[src] or (LAYER[dst] == LAYER[src] and (src, dst) not in SIDEWAYS):
                climbs.append(f"{module}:{line} imports {target} ({src} is layer {LAYER[src]}, {dst} layer "
                              f"{LAYER[dst]})")
    assert climbs == [], "imports that climb or go sideways:\n" + "\n".join(climbs)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each a circle of imports."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _is_package_init(module: str, known: dict[str, Path]) -> bool:
    return known[module].name == "__init__.py"


def test_no_import_circles_between_modules():
    known = _modules()
    graph = {}
    for module, imports in _graph().items():
        if _top(module) in NOT_CHECKED:
            continue
        # A package's __init__ is imported with each of its modules: an edge into it says nothing of the order
        # of the modules themselves, so only edges out of it count.
        graph[module] = {t for t, _ in imports if t != module and not (_is_package_init(t, known)
                                                                        and module.startswith(t + "."))}
    assert _cycles(graph) == []


def test_no_import_circles_between_packages():
    graph: dict[str, set[str]] = {}
    for module, imports in _graph().items():
        src = _top(module)
        if src in NOT_CHECKED:
            continue
        graph.setdefault(src, set()).update(_top(t) for t, _ in imports if _top(t) != src)
    assert _cycles(graph) == []


def test_the_check_sees_a_climb_and_a_circle():
    """The rules above would catch what they are for (no test that cannot fail)."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    known = _modules()
    fake = ROOT / "db" / "engine.py"
    tree_imports = _imports("db.engine", fake, known)
    assert all(_top(t) in {"db", "oee", "keys"} for t, _ in tree_imports)
    assert LAYER["db"] < LAYER["collectors"] < LAYER["config"] < LAYER["pages"]
