"""`store.url`: which backend holds the index, and where.

- empty (the default): the SQLite file `ragkeep.db` in the data dir;
- `sqlite:///NAME.db`: a SQLite file relative to the data dir;
- `sqlite:////ABSOLUTE/PATH.db`: a SQLite file anywhere (four slashes, as in SQLAlchemy).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SCHEMES = ("sqlite",)


@dataclass(frozen=True, slots=True)
class StoreLocation:
    scheme: str
    path: Path


def parse_store_url(url: str, data_dir: Path, default_file: str) -> StoreLocation:
    """The backend and location a URL names; ValueError (with the valid forms) otherwise."""
    if not url:
        return StoreLocation("sqlite", data_dir / default_file)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(
            f"unsupported store URL {url!r}; use sqlite:///NAME.db (in the data dir) or "
            "sqlite:////absolute/path.db, or leave it empty for DATA_DIR/ragkeep.db"
        )
    if not rest.startswith("/") or rest == "/":
        raise ValueError(f"store URL {url!r} names no file; e.g. sqlite:///ragkeep.db")
    path = Path(rest[1:]).expanduser()
    return StoreLocation(scheme, path if path.is_absolute() else data_dir / path)
