"""The application core every front-end shares: the CLI, the Python API (`Keep`) and the
HTTP and MCP servers call these services, never the store or the search engine directly."""

from ragkeep.services.admin import AdminService
from ragkeep.services.flags import FlagService
from ragkeep.services.indexing import IndexingService
from ragkeep.services.querying import QueryService
from ragkeep.services.recovery import RecoveryService

__all__ = ["AdminService", "FlagService", "IndexingService", "QueryService", "RecoveryService"]
