"""The package's imports run one way (docs/architecture.md): every module imports only from the layers
below its own, nothing imports in a circle, and a plug-in module never imports its own package back."""
from __future__ import annotations

import ast
from pathlib import Path

import msgan_cli

PACKAGE = Path(msgan_cli.__file__).parent

# Bottom to top. A module may import from lower layers, and from its own unit (package or module),
# never from a unit beside it or above it.
LAYERS = [
    {"errors"},
    {"config", "figures", "metric_names"},
    {"core"},          # what models, regularisers, metrics and the engine share
    {"data"},
    {"models"},
    {"regularizers", "sampling"},
    {"metrics"},
    {"evaluate"},
    {"train"},         # the engine: builds a session, runs the loop, writes the run directory
    {"report"},
    {"commands", "completion"},
    {"cli"},
    {"__main__"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every msgan_cli module `path` imports, wherever the import stands (a function's lazy import or a
    TYPE_CHECKING block is a dependency too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("msgan_cli")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("msgan_cli"):
            names = {f"{node.module}.{alias.name}" for alias in node.names}
            found |= (names & modules) or {node.module}   # `from package import module` names the module
    return found


def graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py") if "conf" not in path.parts}
    return {name: imports_of(path, set(paths)) - {name} for name, path in paths.items()}


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_import_points_down_the_layers():
    wrong = [f"{importer} imports {imported}" for importer, targets in graph().items() for imported in targets
             if unit(importer) != "__init__" and unit(importer) != unit(imported)
             and LAYER[unit(imported)] >= LAYER[unit(importer)]]
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_every_unit_has_a_layer():
    units = {unit(module) for module in graph()} - {"__init__"}
    assert units <= set(LAYER), f"place these in LAYERS: {sorted(units - set(LAYER))}"


def test_no_module_imports_in_a_circle():
    edges, cycles = graph(), []

    def visit(module: str, trail: list[str]) -> None:
        for imported in edges.get(module, ()):
            if imported in trail:
                cycles.append(" -> ".join(trail[trail.index(imported):] + [imported]))
            elif imported not in seen:
                seen.add(imported)
                visit(imported, trail + [imported])

    for start in sorted(edges):
        seen = {start}
        visit(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))


def test_plug_in_modules_do_not_import_their_package_back():
    """A registry in a package __init__ that its own modules import (`from msgan_cli.metrics import
    register_metric`) made every plug-in import its package back; the registries live in core."""
    back = [f"{module} imports {imported}" for module, targets in graph().items() for imported in targets
            if module.startswith(imported + ".") and imported != "msgan_cli"]
    assert not back, "\n".join(back)


def calls_in_package() -> list[tuple[str, int, ast.Call]]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                found.append((str(path.relative_to(PACKAGE)), node.lineno, node))
    return found


def test_the_package_never_loads_or_runs_what_a_file_or_option_could_turn_into_code():
    """What a run reads (checkpoints, cached classifiers, Inception weights, CIFAR-10 and CUB pickles, YAML)
    is read without running code, and nothing goes through a shell: torch.load only with
    weights_only=True, pickles only through data/pickles.py's RestrictedUnpickler, no yaml.load, eval,
    exec, os.system or subprocess with shell=True."""
    unsafe = []
    for where, line, call in calls_in_package():
        name = ast.unparse(call.func)
        keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
        if name == "torch.load" and keywords.get("weights_only") != "True":
            unsafe.append(f"{where}:{line} torch.load without weights_only=True")
        if name in ("pickle.load", "pickle.loads", "yaml.load", "yaml.unsafe_load", "eval", "exec", "os.system",
                    "os.popen"):
            unsafe.append(f"{where}:{line} {name}")
        if name.startswith("subprocess.") and keywords.get("shell") not in (None, "False"):
            unsafe.append(f"{where}:{line} {name} with shell={keywords['shell']}")
    assert not unsafe, "\n".join(unsafe)
