"""Imports only go downwards, and there is no import circle (read statically from ``ast``).

The layers, lowest first (a module may import its own layer and the ones below):

0. ``livemask.core``: types, errors, images, records, geometry, params
1. ``livemask.config``: config.yaml loading and validation (is handed its Schema)
2. ``livemask.models``, ``face_detector``: the classifier and the detectors
3. ``livemask.engine``: channel, sources, pipeline, tracker, sink protocol, engine
4. ``livemask.sinks``, ``livemask.explain``: window, video, event log, console; explanations
5. ``livemask.data``, ``livemask.report``: datasets, training, evaluation, calibration; compliance reports
6. ``livemask.apps``, ``livemask.web``, ``livemask.batch``, ``livemask`` itself: commands and the composition root
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("livemask", "face_detector")
LAYERS = [
    ("livemask.core",),
    ("livemask.config",),
    ("livemask.models", "face_detector"),
    ("livemask.engine",),
    ("livemask.sinks", "livemask.explain"),
    ("livemask.data", "livemask.report"),
    ("livemask.apps", "livemask.web", "livemask.batch", "livemask"),
]


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the project that ``name`` imports anywhere in its code (also inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def layer(name: str) -> int:
    best, depth = None, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = i, len(prefix)
    assert best is not None, f"{name}: not in any layer; add it to LAYERS (and docs/architecture.md)"
    return best


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
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
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    assert cycles(graph()) == []


def test_no_upward_import():
    upward = [f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
              for a, targets in sorted(graph().items()) for b in sorted(targets)
              if layer(b) > layer(a) and not a.startswith(b + ".")]  # a package's own __init__ is not "up"
    assert upward == []


def test_the_checks_can_fail():
    g = {"livemask.config": {"livemask.apps.compose"}, "livemask.apps.compose": {"livemask.config"}}
    assert cycles(g) == [["livemask.apps.compose", "livemask.config"]]
    assert layer("livemask.config") < layer("livemask.apps.compose")
    assert layer("face_detector.centerface") == layer("livemask.models.backends.keras_model")
    assert imports("livemask.config", ROOT / "livemask" / "config.py", set(modules())) <= {
        "livemask.core", "livemask.core.errors", "livemask.core.params", "livemask.core.safeyaml"}


def test_only_the_composition_root_builds_from_the_config():
    """Below livemask.apps, nobody imports the config's builders (only PROJECT_ROOT, to find model files)."""
    users = {a for a, targets in graph().items() if "livemask.config" in targets and layer(a) < layer("livemask.apps")}
    assert users <= {"livemask.models.backends.keras_model", "livemask.models.export"}  # both: PROJECT_ROOT only


def builders_used(path: Path) -> list[str]:
    """Where a module takes the config's ``build`` (imported by name, or as ``compose.build`` / ``config.build``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module in ("livemask.config", "livemask.apps.compose"):
            found += [f"{path.name}:{node.lineno} imports build" for a in node.names if a.name == "build"]
        elif isinstance(node, ast.Attribute) and node.attr == "build" and isinstance(node.value, ast.Name) \
                and node.value.id in ("compose", "config", "_config"):
            found.append(f"{path.name}:{node.lineno} calls {node.value.id}.build")
    return found


def test_only_compose_turns_config_sections_into_objects():
    """Every command gets its objects from livemask/apps/compose.py: nobody else calls the config's build."""
    allowed = {"livemask.apps.compose", "livemask.config"}
    users = [hit for name, path in sorted(modules().items()) if name not in allowed for hit in builders_used(path)]
    assert users == []


def test_the_builder_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from livemask.config import build\nfrom livemask.apps import compose\ncompose.build({}, 'x')\n")
    assert builders_used(bad) == ["bad.py:1 imports build", "bad.py:3 calls compose.build"]
