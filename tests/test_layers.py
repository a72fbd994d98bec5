"""The layering rule of docs/ARCHITECTURE.md, checked statically: a module imports only from its own layer
or lower ones, and inference code never imports training code."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "pianoforge"

# Evaluation modules that train models on purpose (the paper experiments); the only exception to the rules.
EXPERIMENT_MODULES = {"experiments.py", "gan_experiment.py"}

LAYER = {  # lowest first
    "errors": 0, "fsutil": 0, "native": 0, "config": 0, "budget": 0, "cliargs": 0, "names": 0,
    "audio": 1, "midi": 1,
    "data": 2, "models": 2, "viz": 2,
    "losses": 3, "adversarial": 3, "gan_losses": 3, "gan_audio": 3, "phase": 3, "checkpoint": 3,
    "training": 4, "inference": 4, "improvise": 4,
    "evaluation": 5, "demo": 6, "cli": 6, "web": 6, "__init__": 0,
}


def _unit(path: Path) -> str:
    return path.relative_to(PKG).parts[0].removesuffix(".py")


def _module(path: Path, node: ast.ImportFrom) -> str | None:
    """The absolute module of ``from X import ...`` in ``path`` (a relative ``from ..x import`` resolved)."""
    if not node.level:
        return node.module
    package = ["pianoforge", *path.relative_to(PKG).parent.parts]
    return ".".join(package[:len(package) - (node.level - 1)] + ([node.module] if node.module else []))


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        module = _module(path, node) if isinstance(node, ast.ImportFrom) else None
        if module and module.startswith("pianoforge"):
            parts = module.split(".")
            if len(parts) > 1:
                out.add(parts[1])
            else:  # from pianoforge import x
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("pianoforge."):
                    out.add(a.name.split(".")[1])
    return out


def test_every_module_is_assigned_a_layer():
    units = {_unit(p) for p in PKG.rglob("*.py")}
    assert units <= set(LAYER), f"modules without a layer: {units - set(LAYER)}"


def test_no_module_imports_a_higher_layer():
    bad = []
    for p in PKG.rglob("*.py"):
        me = _unit(p)
        for dep in _imports(p):
            if dep == "__version__":
                continue
            if LAYER[dep] > LAYER[me] and not (me == "evaluation" and dep == "training"
                                               and p.name in EXPERIMENT_MODULES):
                bad.append(f"{p.relative_to(PKG)} imports {dep}")
    assert not bad, bad


def _files(unit: str) -> list[Path]:
    """The files of a top-level unit: ``unit.py``, or every .py of the package ``unit/``."""
    module = PKG / f"{unit}.py"
    files = [module] if module.is_file() else sorted((PKG / unit).rglob("*.py"))
    assert files, f"no module or package named {unit}"
    return files


def test_inference_never_imports_training():
    for unit in ("inference", "improvise"):
        for p in _files(unit):
            assert "training" not in _imports(p), p.relative_to(PKG)
    for p in (PKG / "evaluation").glob("*.py"):
        if p.name not in EXPERIMENT_MODULES:  # experiments train models on purpose
            assert "training" not in _imports(p), p.name


def test_training_never_imports_inference():
    """The trainers sample through the shared layers (gan_audio, viz), never through improvise / inference."""
    for p in (PKG / "training").glob("*.py"):
        assert not _imports(p) & {"improvise", "inference"}, p.name
