"""The file rules of the API: which paths may become sources, and how uploads are named and
stored. Everything a client sends is a name to check, never a path to trust."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import BinaryIO

from ragkeep.server.errors import ApiError

UPLOADS_DIR = "uploads"  # inside the data dir: the managed folder uploads are stored in
_UNSAFE = re.compile(r"[^\w.\- ()+,]+", re.UNICODE)
_MAX_NAME = 120
_COPY_CHUNK = 1 << 20


def allowed_source(raw: str, roots: Sequence[str]) -> str:
    """The real path of `raw` if it lies inside one of `roots` (after resolving `..` and
    symlinks on both sides); otherwise a 403 naming the rule."""
    if not roots:
        raise ApiError(
            403,
            "path_not_allowed",
            "adding sources by path is off on this server (server.allowed_roots is empty); "
            "upload files instead",
        )
    if not raw or "\x00" in raw:
        raise ApiError(400, "bad_path", "the path is empty or contains a NUL byte")
    real_roots = [os.path.realpath(os.path.expanduser(r)) for r in roots]
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = Path(real_roots[0]) / candidate  # relative to the first allowed root
    real = os.path.realpath(candidate)
    for root in real_roots:
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return real
    raise ApiError(
        403,
        "path_not_allowed",
        f"{raw} is outside the folders this server may index (server.allowed_roots)",
    )


def safe_name(filename: str | None, suffixes: Collection[str]) -> str:
    """A plain file name for an upload: no folders, no control characters, no leading dot,
    a bounded length, and a suffix ragkeep can read."""
    base = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem:
        stem, suffix = base, ""
    suffix = "." + suffix.lower() if suffix else ""
    if suffix not in suffixes:
        allowed = ", ".join(sorted(suffixes))
        raise ApiError(
            415, "unsupported_type", f"{filename!r}: only these file types are accepted: {allowed}"
        )
    clean = _UNSAFE.sub("_", stem).strip(" ._") or "upload"
    return clean[: _MAX_NAME - len(suffix)] + suffix


def store_upload(source: BinaryIO, folder: Path, name: str, max_bytes: int) -> int:
    """Copy an upload into `folder/name` atomically (temp file, then rename), at most
    `max_bytes`; returns its size. An upload of an existing name replaces that file, so
    uploading a new version updates the document."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_COPY_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ApiError(
                        413, "too_large", f"{name} is over the {max_bytes // (1 << 20)} MB limit"
                    )
                out.write(chunk)
        if size == 0:
            raise ApiError(400, "empty_file", f"{name} is empty")
        os.replace(tmp, folder / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size
