"""`store.url`: which backend holds the index, and where.

- empty (the default): the SQLite file `ragkeep.db` in the data dir;
- `sqlite:///NAME.db`: a SQLite file relative to the data dir;
- `sqlite:////ABSOLUTE/PATH.db`: a SQLite file anywhere (four slashes, as in SQLAlchemy);
- `postgresql://USER:PASSWORD@HOST:PORT/DATABASE`: a PostgreSQL database with pgvector
  (libpq's URL: `?options=-csearch_path%3DNAME` puts the index in schema NAME).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SCHEMES = ("sqlite", "postgresql", "postgres")
_FORMS = (
    "use sqlite:///NAME.db (in the data dir), sqlite:////absolute/path.db, "
    "postgresql://user@host:5432/database, or leave it empty for DATA_DIR/ragkeep.db"
)


@dataclass(frozen=True, slots=True)
class StoreLocation:
    scheme: str  # "sqlite" or "postgresql"
    path: Path | None  # the SQLite file
    url: str  # the PostgreSQL URL, as given

    @property
    def is_postgres(self) -> bool:
        return self.scheme == "postgresql"


def parse_store_url(url: str, data_dir: Path, default_file: str) -> StoreLocation:
    """The backend and location a URL names; ValueError (with the valid forms) otherwise."""
    if not url:
        return StoreLocation("sqlite", data_dir / default_file, "")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(f"unsupported store URL {url!r}; {_FORMS}")
    if scheme != "sqlite":
        if not rest.strip("/"):
            raise ValueError(f"store URL {url!r} names no server; {_FORMS}")
        return StoreLocation("postgresql", None, url)
    if not rest.startswith("/") or rest == "/":
        raise ValueError(f"store URL {url!r} names no file; e.g. sqlite:///ragkeep.db")
    path = Path(rest[1:]).expanduser()
    return StoreLocation(scheme, path if path.is_absolute() else data_dir / path, "")


def sqlite_path(url: str, data_dir: Path, default_file: str) -> Path:
    """The SQLite file `url` names; ValueError for another backend."""
    location = parse_store_url(url, data_dir, default_file)
    if location.path is None:
        raise ValueError(f"store URL {url!r} names no SQLite file")
    return location.path


def without_password(url: str) -> str:
    """The URL as it may be shown: a password in it replaced by ***."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def store_backend(url: str) -> str:
    """ "sqlite" or "postgresql": which backend `url` names (an invalid URL: "sqlite", the
    setting's own validation reports it)."""
    scheme = url.partition("://")[0]
    return "postgresql" if scheme in ("postgresql", "postgres") else "sqlite"
