"""The architecture, checked: SQL lives only in the backends (sqlite3 only in the SQLite one),
the layers above them import no backend, and only the SQLite backend's own tests open its
database file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import ROOT

SRC = ROOT / "src" / "ragkeep"
TESTS = ROOT / "tests"
BACKEND = SRC / "store" / "sqlite"
POSTGRES = SRC / "store" / "postgres"
# Only the factory that opens the store named by `store.url`, and the copy between stores
# (whose backups are SQLite files on every backend), may import a backend.
MAY_IMPORT_BACKENDS = {SRC / "store" / "__init__.py", SRC / "store" / "transfer.py"}

SQL = re.compile(
    r"\bSELECT\b.*\bFROM\b|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bDELETE\s+FROM\b|\bUPDATE\s+\w+\s+SET\b"
    r"|\bCREATE\s+(TABLE|INDEX|TRIGGER|VIRTUAL)\b|\bDROP\s+(TABLE|INDEX)\b|\bPRAGMA\s+\w+"
    r"|^\s*(BEGIN|COMMIT|ROLLBACK)\b",
    re.DOTALL,
)


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _code_strings(tree: ast.AST) -> list[str]:
    """String constants that are not docstrings (prose may mention SQL; code may not)."""
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _outside_backend() -> list[Path]:
    return [p for p in _sources(SRC) if BACKEND not in p.parents and POSTGRES not in p.parents]


def test_the_check_sees_the_backends_sql() -> None:
    """The patterns below must recognise the SQL the backend really writes."""
    backend_sql = [s for p in _sources(BACKEND) for s in _code_strings(ast.parse(p.read_text()))]
    assert sum(1 for s in backend_sql if SQL.search(s)) > 40


def test_no_sqlite3_in_the_postgres_backend() -> None:
    assert [p for p in _sources(POSTGRES) if "sqlite3" in _imports(ast.parse(p.read_text()))] == []


def test_sqlite3_and_sql_text_only_in_the_backends() -> None:
    offenders = []
    for path in _outside_backend():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if "sqlite3" in _imports(tree):
            offenders.append(f"{path.relative_to(ROOT)}: imports sqlite3")
        offenders += [
            f"{path.relative_to(ROOT)}: SQL {s.strip()[:60]!r}"
            for s in _code_strings(tree)
            if SQL.search(s)
        ]
    assert offenders == []


def test_only_the_store_factory_imports_a_backend() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in _outside_backend()
        if path not in MAY_IMPORT_BACKENDS
        and any(
            m.startswith(("ragkeep.store.sqlite", "ragkeep.store.postgres"))
            for m in _imports(ast.parse(path.read_text()))
        )
    ]
    assert offenders == []


def test_only_the_sqlite_backends_own_tests_open_its_database() -> None:
    own = TESTS / "sqlite"
    offenders = []
    for path in _sources(TESTS):
        if own in path.parents or path == Path(__file__):
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        if "sqlite3" in _imports(tree) or "ragkeep.db" in text:
            offenders.append(f"{path.relative_to(ROOT)}: opens the database file")
        if any(m.startswith("ragkeep.store.sqlite") for m in _imports(tree)):
            offenders.append(f"{path.relative_to(ROOT)}: imports the SQLite backend")
    assert offenders == []


def test_keep_is_wiring_only() -> None:
    """`Keep` builds the services and forwards to them: no method longer than a few lines."""
    tree = ast.parse((SRC / "keep.py").read_text())
    keep = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Keep")
    for node in keep.body:
        if isinstance(node, ast.FunctionDef) and node.name != "__init__":
            statements = [s for s in node.body if not isinstance(s, ast.Expr)]  # docstrings
            assert len(statements) <= 3, f"Keep.{node.name} holds logic; move it to a service"
