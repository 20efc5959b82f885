"""The log level of the running server: read it, change it without a restart."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ragkeep.observability.logs import logging_status, set_level

router = APIRouter(prefix="/api", tags=["admin"])


class LevelBody(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        description="The new level, for this server process until it stops (the setting "
        "`logging.level` applies again at the next start)."
    )


@router.get("/logging", summary="Log level, format, queued and dropped records")
async def get_logging() -> Any:
    return logging_status()


@router.put("/logging", summary="Change the log level now, without a restart")
async def put_logging(body: LevelBody) -> Any:
    set_level(body.level)  # logged as a warning, so the change shows in the log itself
    return logging_status()
