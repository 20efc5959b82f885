"""What every route needs, built once per server process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from ragkeep.config.settings import ServerSettings
from ragkeep.keep import Keep
from ragkeep.server.files import UPLOADS_DIR
from ragkeep.server.jobs import JobQueue
from ragkeep.server.limits import Slots


@dataclass
class ServerState:
    keep: Keep
    settings: ServerSettings
    jobs: JobQueue
    searches: Slots
    asks: Slots
    model_ready: threading.Event = field(default_factory=threading.Event)
    model_error: str | None = None

    @property
    def uploads(self) -> Path:
        return self.keep.data_dir / UPLOADS_DIR

    @classmethod
    def create(cls, keep: Keep) -> ServerState:
        cfg = keep.settings.server
        return cls(
            keep=keep,
            settings=cfg,
            jobs=JobQueue(cfg.job_queue),
            searches=Slots("search", cfg.max_searches),
            asks=Slots("ask", cfg.max_asks),
        )


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.ragkeep
    return state
