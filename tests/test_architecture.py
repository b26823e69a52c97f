"""The layout rules of docs/architecture.md: imports only downward, no private names across modules,
Numba only in the backend, aliases of old import paths that nothing inside imports, a light ``--help``."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"gdchaos": ROOT / "gdchaos", "gdchaos_tui": ROOT / "tui"}
# layer of each package or top-level module, lowest first (docs/architecture.md)
LAYERS = {
    "gdchaos._version": 0.0, "gdchaos.errors": 0.0, "gdchaos.text": 0.0, "gdchaos.checks": 0.1,
    "gdchaos.grid": 0.2, "gdchaos": 0.3,
    "gdchaos.backend": 1,
    "gdchaos.nn": 2, "gdchaos.analysis": 2, "gdchaos.data": 2,
    "gdchaos.config": 3, "gdchaos.presets": 3,
    "gdchaos.engine": 4, "gdchaos.cubic": 4,
    "gdchaos.store": 5,
    "gdchaos.plan": 5.5, "gdchaos.runner": 6, "gdchaos.findlr": 6.2, "gdchaos.cluster": 6.5,
    "gdchaos.plot": 7,
    "gdchaos.cli": 8, "gdchaos_tui": 8, "gdchaos.__main__": 9,
}
ALIASES = {"gdchaos.model", "gdchaos.cnn", "gdchaos.hessian", "gdchaos.train", "gdchaos.results",
           "gdchaos.authors"}
SAME_LAYER_ALLOWED = {("gdchaos.presets", "gdchaos.config")}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


MODULES = _modules()


def _group(module: str) -> str:
    """The package or top-level module a module belongs to (its key in LAYERS)."""
    parts = module.split(".")
    for size in range(len(parts), 0, -1):
        if ".".join(parts[:size]) in LAYERS or ".".join(parts[:size]) in ALIASES:
            return ".".join(parts[:size])
    raise AssertionError(f"{module} has no layer in tests/test_architecture.py")


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import, function-level ones included."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out += [(base, alias.name, node.lineno) for alias in node.names]
    return out


def _project(name: str) -> str | None:
    """The project module an import refers to (longest known prefix), or None for other packages."""
    parts = name.split(".")
    for size in range(len(parts), 0, -1):
        if ".".join(parts[:size]) in MODULES:
            return ".".join(parts[:size])
    return None


def test_every_module_has_a_layer():
    for module in MODULES:
        _group(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_only_downward(module):
    source = _group(module)
    for imported, name, line in _imports(module):
        target_name = f"{imported}.{name}" if name and _project(f"{imported}.{name}") else imported
        target = _project(target_name)
        if target is None or target == module:
            continue
        group = _group(target)
        where = f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}"
        assert group not in ALIASES, f"{where}: an alias of an old import path"
        if group == source or (source in ALIASES) or (source, group) in SAME_LAYER_ALLOWED:
            continue
        assert LAYERS[group] < LAYERS[source], f"{where}: layer {LAYERS[group]} is not below {LAYERS[source]}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_across_modules(module):
    for imported, name, line in _imports(module):
        if name and name.startswith("_") and not name.startswith("__") and _project(imported):
            raise AssertionError(f"{MODULES[module].relative_to(ROOT)}:{line} imports {imported}.{name}")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_backend_calls_numba(module):
    if _group(module) == "gdchaos.backend":
        return
    for imported, _, line in _imports(module):
        assert imported.split(".")[0] != "numba", f"{MODULES[module].relative_to(ROOT)}:{line} imports numba"


def test_aliases_give_the_same_objects():
    import gdchaos.authors
    import gdchaos.cnn
    import gdchaos.hessian
    import gdchaos.model
    import gdchaos.results
    import gdchaos.train
    from gdchaos import analysis, engine, nn, store
    from gdchaos.engine import train

    assert gdchaos.model.MLP is nn.MLP and gdchaos.cnn.CNN is nn.CNN
    assert gdchaos.hessian.top_eigenvalue is nn.top_eigenvalue
    assert gdchaos.train.train_balls is train.train_balls and engine.train is train
    assert gdchaos.results.open is store.open and gdchaos.results.Results is store.Results
    assert gdchaos.authors.read_authors_file is analysis.authors.read_authors_file


def test_help_imports_no_numerical_package():
    code = ("import sys; from gdchaos.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'numba', 'h5py', 'rich', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
