"""oee/ is pure: it imports no I/O, no db/, no collectors/, and reads no clock; its vocabulary equals db.models'."""
from __future__ import annotations

import ast
from pathlib import Path

import oee
from oee import vocabulary

PACKAGE = Path(oee.__file__).parent
ALLOWED = {"__future__", "bisect", "collections", "dataclasses", "datetime", "fractions", "math", "operator", "typing",
           "zoneinfo", "oee"}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.lineno


def test_only_pure_imports():
    bad = [f"{p.name}:{line} imports {name}" for p in PACKAGE.glob("*.py") for name, line in _imports(p)
           if name.split(".")[0] not in ALLOWED]
    assert bad == []


def test_no_wall_clock():
    for p in PACKAGE.glob("*.py"):
        text = p.read_text()
        for call in ("datetime.now(", ".utcnow(", "date.today(", "time.time(", "time.monotonic("):
            assert call not in text, f"{p.name} reads the clock ({call})"


def test_vocabulary_matches_db_models():
    from db import models

    assert vocabulary.MACHINE_STATES == models.MACHINE_STATES
    assert vocabulary.LOSS_CATEGORIES == models.LOSS_CATEGORIES
    assert vocabulary.PLANNED_CATEGORIES == models.PLANNED_CATEGORIES
    assert set(vocabulary.STATE_CATEGORY) == set(models.MACHINE_STATES) - {"running"}


def test_public_api_is_exported():
    for name in oee.__all__:
        assert hasattr(oee, name), name
    assert "README.md" in oee.__doc__
