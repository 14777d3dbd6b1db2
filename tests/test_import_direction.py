"""Imports run one way: tools -> c360_assets/definitions.py -> defs -> lib -> resources, with no
cycle between modules. Every import counts, also one inside a function (a cycle hidden there is
still a cycle). A failure names the file, the line and the import."""

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("c360_assets", "resources")
# a module may import the layers listed for its own layer (and nothing else of these packages)
LAYERS = {
    "code location": ("code location", "tools", "definitions", "defs", "lib", "resources"),
    "tools": ("tools", "definitions", "defs", "lib", "resources"),
    "definitions": ("defs", "lib", "resources"),
    "defs": ("defs", "lib", "resources"),
    "lib": ("lib", "resources"),
    "resources": ("resources",),
    "package": ("package",),
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (of these packages)
    where: str  # path:line


def layer(module: str) -> str:
    if module == "definitions":
        return "code location"
    if module == "c360_assets.definitions":
        return "definitions"
    if module.startswith("resources"):
        return "resources"
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in ("tools", "defs", "lib"):
        return parts[1]
    return "package"  # c360_assets/__init__.py


def modules(root: Path) -> dict[str, Path]:
    """Every module of the packages (and the code location file): dotted name -> path."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    if (root / "definitions.py").exists():
        found["definitions"] = root / "definitions.py"
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The known module ``name`` denotes: itself, or its nearest known parent package."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(root: Path) -> list[Import]:
    known = modules(root)
    found = []
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, up level - 1
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, base] if base else up)
                # "from a import b": the module a.b when it is one, else a
                names = [f"{base}.{alias.name}" for alias in node.names]
                names = [n if n in known else base for n in names]
            else:
                continue
            where = f"{path.relative_to(root)}:{node.lineno}"
            for name in names:
                target = (
                    _resolve(name, known)
                    if name.split(".")[0] in (*PACKAGES, "definitions")
                    else None
                )
                if target is not None and target != module:
                    found.append(Import(module, target, where))
    return found


def direction_violations(root: Path) -> list[str]:
    return [
        f"{i.where}: {i.source} ({layer(i.source)}) imports {i.target} ({layer(i.target)}); "
        f"{layer(i.source)} may import only {', '.join(LAYERS[layer(i.source)])}"
        for i in imports(root)
        if layer(i.target) not in LAYERS[layer(i.source)]
    ]


def cycles(root: Path) -> list[str]:
    """Each import cycle once, as its chain of imports (file:line of each)."""
    edges: dict[str, list[Import]] = {}
    for found in imports(root):
        edges.setdefault(found.source, []).append(found)
    reported, chains = set(), []
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(module: str, path: list[Import]) -> None:
        state[module] = "open"
        for edge in edges.get(module, ()):
            if state.get(edge.target) == "open":
                start = next(i for i, e in enumerate(path + [edge]) if e.source == edge.target)
                cycle = (path + [edge])[start:]
                members = frozenset(e.source for e in cycle)
                if members not in reported:
                    reported.add(members)
                    chains.append(
                        " -> ".join(f"{e.source} ({e.where})" for e in cycle) + f" -> {edge.target}"
                    )
            elif edge.target not in state:
                visit(edge.target, [*path, edge])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [])
    return chains


def test_imports_run_one_way():
    assert direction_violations(ROOT) == []


def test_no_import_cycle():
    assert cycles(ROOT) == []


def test_a_wrong_import_and_a_cycle_are_named(tmp_path):
    def module(relative: str, text: str) -> None:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    for package in (
        "c360_assets",
        "c360_assets/lib",
        "c360_assets/defs",
        "c360_assets/defs/usage",
        "resources",
    ):
        module(f"{package}/__init__.py", "")
    module(
        "c360_assets/lib/models.py",
        "import os\n\n\ndef build():\n    from c360_assets.defs.usage import assets\n",
    )
    module("c360_assets/defs/usage/assets.py", "from c360_assets.lib import models\n")
    module("resources/lakehouse.py", "from ..c360_assets.lib import models\n")
    assert direction_violations(tmp_path) == [
        "c360_assets/lib/models.py:5: c360_assets.lib.models (lib) imports "
        "c360_assets.defs.usage.assets (defs); lib may import only lib, resources",
        "resources/lakehouse.py:1: resources.lakehouse (resources) imports "
        "c360_assets.lib.models (lib); resources may import only resources",
    ]
    assert cycles(tmp_path) == [
        "c360_assets.defs.usage.assets (c360_assets/defs/usage/assets.py:1) -> "
        "c360_assets.lib.models (c360_assets/lib/models.py:5) -> c360_assets.defs.usage.assets"
    ]
