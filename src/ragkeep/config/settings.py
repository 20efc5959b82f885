"""Settings: defaults < TOML file < RAGKEEP_* environment < CLI options, validated once at start-up.

pydantic-settings parses each layer; ragkeep merges them itself so that `ragkeep config show`
can say where every effective value came from.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from ragkeep.config.flags import FLAGS, FlagError, check_requirements, unknown_flag_message
from ragkeep.models import SearchMode
from ragkeep.store.url import store_backend

ENV_PREFIX = "RAGKEEP_"
# Environment variables that choose *where* settings live rather than being settings.
LOCATION_ENV = {"RAGKEEP_HOME", "RAGKEEP_CONFIG"}
CONFIG_FILE_NAME = "config.toml"
# Settings only one store backend reads (docs/scale-out.md); set for the other, they are refused.
BACKEND_KEYS = {
    "store.pool_size": "postgresql",
    "store.connect_timeout_s": "postgresql",
    "store.hnsw_ef_search": "postgresql",
    "store.busy_timeout_ms": "sqlite",
    "store.max_size_mb": "sqlite",
    "store.synchronous": "sqlite",
}
BACKEND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbedSettings(_Section):
    threads: int = Field(2, ge=1, le=64, description="ONNX Runtime intra-op threads.")
    batch_size: int = Field(32, ge=1, le=512, description="Most texts in one embedding batch.")
    batch_tokens: int = Field(
        2048,
        ge=256,
        le=65536,
        description="Most padded tokens in one embedding batch (2048 = 8 full-length chunks): "
        "bounds peak memory whatever the input. Left unset, ingest tunes it within what "
        "resources.memory_limit_mb allows; setting it switches tuning off.",
    )
    timeout_s: float = Field(
        10.0,
        gt=0,
        description="Longest a query embedding may take; past it hybrid search answers from "
        "BM25 alone and says so.",
    )
    breaker_failures: int = Field(
        3,
        ge=1,
        le=100,
        description="Embedder failures within breaker_window_s that open its "
        "circuit breaker: searches then skip the embedder until the cool-down ends.",
    )
    breaker_window_s: float = Field(
        60.0, gt=0, description="Window in which embedder failures are counted."
    )
    breaker_cooldown_s: float = Field(
        30.0, gt=0, description="How long an open embedder breaker waits before one probe."
    )


class ChunkSettings(_Section):
    size_tokens: int = Field(
        200, ge=16, le=254, description="Chunk length in model tokens (the model window is 256)."
    )
    overlap_tokens: int = Field(
        32, ge=0, le=128, description="Tokens shared by consecutive chunks of a document."
    )


class IngestSettings(_Section):
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are skipped.")
    ignore: tuple[str, ...] = Field(
        (".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv"),
        description="File or folder names skipped while walking a source.",
    )
    include_hidden: bool = Field(False, description="Index files and folders starting with '.'.")
    file_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Longest reading and chunking one file may take; past it the file is "
        "reported as failed and the run goes on.",
    )


class SearchSettings(_Section):
    mode: SearchMode = Field(SearchMode.HYBRID, description="Default search mode.")
    k: int = Field(10, ge=1, le=1000, description="Default number of results.")
    fusion: Literal["rrf", "score"] = Field(
        "score",
        description="How hybrid mode fuses BM25 and dense rankings: min-max normalised "
        "scores (measured best on SciFact) or reciprocal-rank fusion.",
    )
    rrf_k: int = Field(60, ge=1, le=1000, description="Rank constant of reciprocal-rank fusion.")
    dense_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight of the dense score in score fusion."
    )
    bm25_stopwords: bool = Field(
        True,
        description="Drop English stop words (the, of, …) from BM25 queries: they match "
        "almost every chunk, so FTS5 scores more chunks for no ranking gain.",
    )
    bm25_max_df: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="In hybrid mode, leave out of the BM25 query the words found in more than "
        "this share of all chunks, and let the dense retriever weigh them (1.0: keep every "
        "word). Makes long hybrid queries markedly faster (docs/benchmarks.md). Mode bm25 "
        "always searches every word.",
    )
    bm25_common_min_chunks: int = Field(
        1000,
        ge=0,
        description="A word counts as common (see bm25_max_df) only if it is also in more than "
        "this many chunks. The speed bm25_max_df buys matters only for words in many chunks; "
        "in a small index, 10 % of the chunks is a handful, and dropping the words that carry "
        'the question ("tomatoes" in a garden notebook) loses the answer.',
    )
    candidates: int = Field(
        100, ge=10, le=5000, description="Candidates each retriever contributes to fusion."
    )
    ann_min_vectors: int = Field(
        50000,
        ge=0,
        description="With the ann_index flag on, use the ANN index only from this many "
        "chunks on (below it exact search is fast enough and exact).",
    )
    ann_wait_s: float = Field(
        30.0,
        gt=0,
        description="How long closing an index waits for a background ANN build to stop.",
    )
    derived_wait_s: float = Field(
        5.0,
        gt=0,
        description="How long a search waits for another search of the same process that is "
        "loading the vector matrix or the ANN index; past it, it searches exactly straight "
        "from the database instead (and logs a warning).",
    )


class CacheSettings(_Section):
    memory_mb: float | None = Field(
        None,
        ge=0.0,
        le=4096.0,
        description="In-process result cache size (0: no memory tier). Unset: 3% of "
        "resources.memory_limit_mb.",
    )
    embedding_memory_mb: float | None = Field(
        None,
        ge=0.0,
        le=1024.0,
        description="In-process query-embedding cache size. Unset: 1% of "
        "resources.memory_limit_mb.",
    )
    persistent_mb: float = Field(
        64.0, ge=0.0, le=16384.0, description="Result cache size in the index database."
    )
    persistent_entries: int = Field(
        20000, ge=0, description="Most result-cache entries kept in the index database."
    )
    ttl_s: float = Field(
        7 * 24 * 3600.0, ge=0.0, description="Result cache entries expire after this (0: never)."
    )


class LLMSettings(_Section):
    provider: Literal["none", "ollama", "openai"] = Field(
        "none", description="Which LLM answers questions; 'none' answers with passages."
    )
    url: str = Field(
        "http://127.0.0.1:11434",
        description="Base URL of the LLM server (Ollama, or an OpenAI-compatible /v1 server).",
    )
    model: str = Field("llama3.2", min_length=1, description="Model name sent to the LLM server.")
    api_key: SecretStr | None = Field(
        None, description="Bearer token for OpenAI-compatible servers."
    )
    backoff_s: float = Field(
        0.5, ge=0.0, le=30.0, description="First retry delay; doubles on each retry."
    )
    timeout_s: float = Field(
        60.0,
        gt=0,
        description="Read timeout per streamed chunk, the first included; llm.deadline_s "
        "bounds the whole answer.",
    )
    connect_timeout_s: float = Field(3.0, gt=0, description="Connect timeout.")
    max_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries before the first token, each announced as it begins; all within "
        "llm.deadline_s.",
    )
    temperature: float = Field(0.1, ge=0.0, le=2.0, description="Sampling temperature.")
    ask_k: int = Field(5, ge=1, le=50, description="Passages given to the LLM by `ask`.")
    ask_min_score_ratio: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="An answer's passages stop at the first one scoring below this share of "
        "the best passage's score, so an answer is not padded with unrelated passages (0: "
        "always ask_k). On SciFact, 0.4 keeps 96.6 % of the relevant passages and drops 16 % "
        "of the others (docs/answers.md).",
    )
    deadline_s: float = Field(
        90.0,
        gt=0,
        description="An ask waits at most this long for the LLM, retries, backoff and "
        "streaming included; then it answers with the passages. Below server.ask_deadline_s, "
        "so the web page gets the passages too, not an error.",
    )
    breaker_failures: int = Field(
        3,
        ge=1,
        le=100,
        description="LLM failures within breaker_window_s that open its circuit breaker: "
        "`ask` then answers from passages at once until the cool-down ends.",
    )
    breaker_window_s: float = Field(
        60.0, gt=0, description="Window in which LLM failures are counted."
    )
    breaker_cooldown_s: float = Field(
        30.0,
        gt=0,
        description="How long an open LLM breaker waits before letting one probe through.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:11434")
        return value

    @field_validator("api_key")
    @classmethod
    def _empty_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None


class StoreSettings(_Section):
    url: str = Field(
        "",
        description="Which store holds the index: empty for DATA_DIR/ragkeep.db, "
        "sqlite:///NAME.db for another file in the data dir, sqlite:////ABSOLUTE/PATH.db "
        "for a file anywhere, postgresql://USER@HOST:PORT/DATABASE for PostgreSQL with "
        "pgvector (the postgres extra; docs/scale-out.md).",
    )
    pool_size: int = Field(
        8,
        ge=1,
        description="PostgreSQL: database connections each process keeps at most (searches "
        "in flight beyond it wait for one, up to store.connect_timeout_s).",
    )
    connect_timeout_s: float = Field(
        10.0,
        gt=0,
        description="PostgreSQL: how long to wait for the server to accept a connection, or "
        "for a free connection in the pool, before failing with a clear error.",
    )
    hnsw_ef_search: int = Field(
        100,
        ge=1,
        le=1000,
        description="PostgreSQL: pgvector's hnsw.ef_search when the ann_index flag is on: "
        "candidates an approximate search looks at (higher: better recall, slower).",
    )
    busy_timeout_ms: int = Field(
        2000,
        ge=0,
        description="SQLite: how long SQLite itself waits for another writer per attempt.",
    )
    lock_timeout_s: float = Field(
        120.0,
        gt=0,
        description="How long a write keeps retrying (with backoff) for the database lock "
        "before failing with a clear 'index is busy' error.",
    )
    writer_timeout_s: float = Field(
        600.0,
        gt=0,
        description="How long add, sync and remove wait for another writer (another process's "
        "add or sync) to finish before failing; the error names the process holding it.",
    )
    max_size_mb: float = Field(
        0.0,
        ge=0.0,
        description="SQLite: largest the database file may grow (0: no limit). Past it writes fail "
        "like on a full disk: the file being indexed keeps its previous version.",
    )
    # 64 MB holds ~41,000 MiniLM vectors (hours of embedding on a laptop CPU) while adding
    # ~0.2 s to each rebuild of the vector matrix, which scans them (docs/benchmarks.md).
    keep_unreferenced_mb: float = Field(
        64.0,
        ge=0.0,
        description="Vectors no document uses any more (a removed folder, an edited file) are "
        "kept up to this many MB, so adding the same text back needs no embedding; past it, "
        "add/sync/remove delete them all. 0: delete them at once. `ragkeep gc` deletes them "
        "on demand; `ragkeep status` shows how much they take.",
    )
    synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="SQLite: durability. NORMAL may lose the last commits on power loss, "
        "never corrupts; FULL also survives power loss, slower.",
    )

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from ragkeep.store.url import parse_store_url

        parse_store_url(value, Path("."), "ragkeep.db")  # raises with the valid forms
        return value


class BackupSettings(_Section):
    dir: str = Field(
        "",
        description="Where backups and automatic snapshots go (empty: DATA_DIR/backups). "
        "On another disk, they survive the loss of the index's disk.",
    )
    keep: int = Field(
        10,
        ge=1,
        le=10000,
        description="How many backups the backups dir keeps: after each new one, older ones "
        "are deleted. Backups made with `backup --to` elsewhere are not counted.",
    )
    snapshots: bool = Field(
        True,
        description="Take a snapshot before a `remove` of a whole source and a `doctor "
        "--repair` that repairs something. A schema migration and `reembed` always take one "
        "(they roll back to it by themselves when validation fails), and so does "
        "`sync --snapshot`.",
    )
    validation_queries: str = Field(
        "",
        description="A file of queries, one per line, whose dense top-10 results a re-embed "
        "must keep (see min_overlap); empty: no query set.",
    )
    min_overlap: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="The share of each validation query's top 10 a re-embed must keep, on "
        "average; less rolls the re-embed back.",
    )
    min_self_recall: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="After a re-embed, the share of 50 sampled chunks that dense search must "
        "find in its top 5 from their own first 12 words; less rolls the re-embed back "
        "(vectors that mean nothing find about 5 in the number of chunks).",
    )


class ResourceSettings(_Section):
    memory_limit_mb: int = Field(
        1024,
        ge=256,
        le=1048576,
        description="Memory one ragkeep process aims to stay within. Embedding batches, the "
        "ingest queue, the in-process caches and per-process query structures are sized from "
        "it (docs/degradation.md).",
    )
    slow_query_s: float = Field(
        1.0, gt=0, description="A search or ask slower than this is logged as a warning."
    )
    slow_write_s: float = Field(
        30.0,
        gt=0,
        description="A write (one document's commit, a lock wait, a derived-file write) "
        "slower than this is logged as a warning.",
    )


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "WARNING",
        description="Log level. -v (INFO) and -vv (DEBUG) raise it for one CLI run, -q lowers "
        "it to ERROR; a running server changes it with `ragkeep log-level` "
        "(docs/logging.md).",
    )
    format: Literal["text", "json"] = Field(
        "text", description="text: one readable line per record; json: one JSON object per line."
    )
    file: str | None = Field(
        None, description="Write log records to this file (appended) instead of stderr."
    )
    queue_size: int = Field(
        10000,
        ge=10,
        le=1_000_000,
        description="Records waiting for the writer thread. When the sink falls behind, new "
        "records are dropped and counted (ragkeep_log_records_dropped_total): logging never "
        "blocks a search.",
    )
    sample_rate: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Share of high-frequency INFO events (one per search, per ask, per "
        "embedding batch) that are logged. Slow operations and warnings are always logged.",
    )
    events_per_s: int = Field(
        100,
        ge=0,
        le=1_000_000,
        description="At most this many of those events of each kind per second, after "
        "sampling (0: no limit). Bounds what they cost however cheap the operation: a cached "
        "search takes ~70 µs and writing one event ~50 µs (docs/benchmarks.md).",
    )


class HealthSettings(_Section):
    """The monitoring table's thresholds (docs/observability.md); defaults are the playbook's."""

    window_s: float = Field(
        300.0, ge=10, le=86400, description="Rolling window `health` evaluates."
    )
    sample_s: float = Field(
        5.0, ge=0.5, le=600, description="How often a server samples its metrics for the window."
    )
    min_requests: int = Field(
        20,
        ge=1,
        description="Fewer searches and asks than this in the window: error rate, hit rate "
        "and p95 say 'no data' rather than judge from a handful.",
    )
    error_rate_target: float = Field(0.02, ge=0, le=1, description="Error rate target (below).")
    error_rate_alert: float = Field(0.05, ge=0, le=1, description="Error rate alert (above).")
    error_rate_critical: float = Field(0.10, ge=0, le=1, description="Error rate critical (above).")
    memory_alert: float = Field(
        0.80, gt=0, le=2, description="Memory alert: RSS above this share of the memory limit."
    )
    memory_critical: float = Field(
        0.95, gt=0, le=2, description="Memory critical: RSS above this share of the limit."
    )
    hit_rate_target: float = Field(0.80, ge=0, le=1, description="Cache hit rate target (above).")
    hit_rate_alert: float = Field(0.60, ge=0, le=1, description="Cache hit rate alert (below).")
    hit_rate_critical: float = Field(
        0.40, ge=0, le=1, description="Cache hit rate critical (below)."
    )
    p95_target_s: float = Field(0.5, gt=0, description="Search p95 latency target (below).")
    p95_alert_s: float = Field(1.0, gt=0, description="Search p95 latency alert (above).")
    p95_critical_s: float = Field(2.0, gt=0, description="Search p95 latency critical (above).")
    ready_on: tuple[Literal["error_rate", "memory", "cache_hit_rate", "query_p95"], ...] = Field(
        ("error_rate", "memory", "cache_hit_rate", "query_p95"),
        description="Metrics whose critical state makes /readyz answer 503.",
    )


class ServerSettings(_Section):
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address `ragkeep serve` binds. Anything but a loopback address needs "
        "server.token.",
    )
    port: int = Field(8765, ge=0, le=65535, description="TCP port of `ragkeep serve` (0: any).")
    token: SecretStr | None = Field(
        None,
        description="Bearer token every API request must carry (Authorization: Bearer ...). "
        "Required to bind a non-loopback address. Prefer RAGKEEP_SERVER__TOKEN to a file.",
    )
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="Host header names accepted besides localhost, 127.0.0.1, ::1 and the "
        "bound address (e.g. the name a reverse proxy forwards). Guards against DNS "
        "rebinding.",
    )
    cors_origins: tuple[str, ...] = Field(
        (), description="Origins allowed to call the API from a browser (CORS). Empty: off."
    )
    allowed_roots: tuple[str, ...] = Field(
        (),
        description="Folders under which the API may add sources by path. Empty: only "
        "uploads can be added over HTTP.",
    )
    upload_max_mb: float = Field(
        25.0, gt=0, le=1024, description="Largest file an upload may carry."
    )
    body_max_kb: int = Field(
        256, ge=1, le=65536, description="Largest request body other than an upload."
    )
    search_deadline_s: float = Field(
        10.0, gt=0, description="A search not answered by then gets 504."
    )
    ask_deadline_s: float = Field(
        120.0, gt=0, description="An ask (retrieval and the whole LLM answer) must end by then."
    )
    request_deadline_s: float = Field(
        30.0, gt=0, description="Deadline of every other request (status, doctor, uploads)."
    )
    max_searches: int = Field(
        8, ge=1, le=1024, description="Searches in flight at once; more get 429 at once."
    )
    max_asks: int = Field(
        2, ge=1, le=256, description="Asks in flight at once; more get 429 at once."
    )
    job_queue: int = Field(
        8, ge=1, le=1024, description="Write jobs (sync, add, remove, upload) waiting; more: 503."
    )

    @field_validator("token")
    @classmethod
    def _no_empty_token(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None


class Settings(BaseSettings):
    """Every setting ragkeep reads; the TOML file uses the same sections and keys."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    embed: EmbedSettings = EmbedSettings()
    chunking: ChunkSettings = ChunkSettings()
    ingest: IngestSettings = IngestSettings()
    search: SearchSettings = SearchSettings()
    llm: LLMSettings = LLMSettings()
    store: StoreSettings = StoreSettings()
    backup: BackupSettings = BackupSettings()
    cache: CacheSettings = CacheSettings()
    resources: ResourceSettings = ResourceSettings()
    server: ServerSettings = ServerSettings()
    logging: LoggingSettings = LoggingSettings()
    health: HealthSettings = HealthSettings()
    flags: dict[str, bool] = Field(
        default_factory=dict, description="Feature flags forced on or off (see `ragkeep flags`)."
    )

    @field_validator("flags")
    @classmethod
    def _known_flags(cls, value: dict[str, bool]) -> dict[str, bool]:
        for name in value:
            if name not in FLAGS:
                raise ValueError(unknown_flag_message(name))
        return value

    @field_validator("chunking")
    @classmethod
    def _overlap_fits(cls, value: ChunkSettings) -> ChunkSettings:
        if value.overlap_tokens >= value.size_tokens // 2:
            raise ValueError("chunking.overlap_tokens must be less than half of size_tokens")
        return value


class ConfigError(Exception):
    """Settings that cannot be used; the message says what is wrong and what is valid."""


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    data_dir: Path
    config_file: Path | None
    # dotted key -> "default" | "file" | "env" | "cli"
    sources: dict[str, str] = field(default_factory=dict)


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("ragkeep", appauthor=False))


def resolve_data_dir(data_dir: Path | str | None) -> Path:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("RAGKEEP_HOME")
    return Path(env).expanduser() if env else default_data_dir()


def load_settings(
    data_dir: Path | str | None = None,
    config_file: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
) -> LoadedSettings:
    """Build the effective settings; raise ConfigError with a readable message on any problem."""
    home = resolve_data_dir(data_dir)
    cfg = _resolve_config_file(home, config_file)
    file_values = _read_toml(cfg) if cfg else {}
    env_values = _read_env()
    cli_values = _nest(overrides or {})
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for label, layer in (("file", file_values), ("env", env_values), ("cli", cli_values)):
        _deep_merge(merged, layer, label, sources)
    try:
        settings = Settings.model_validate(merged)
        check_requirements(settings.flags, store_backend(settings.store.url))
        _check_backend_keys(settings, sources, cfg)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except FlagError as exc:
        raise ConfigError(str(exc)) from None
    return LoadedSettings(settings=settings, data_dir=home, config_file=cfg, sources=sources)


def env_var(key: str) -> str:
    """The environment variable that sets a dotted key: store.pool_size ->
    RAGKEEP_STORE__POOL_SIZE."""
    return ENV_PREFIX + key.replace(".", "__").upper()


def _check_backend_keys(settings: Settings, sources: dict[str, str], cfg: Path | None) -> None:
    """A key only the other backend reads would silently do nothing: the user who set
    store.synchronous = "FULL" and then moved to PostgreSQL believes in a durability that
    PostgreSQL's own settings decide."""
    backend = store_backend(settings.store.url)
    for key, only in BACKEND_KEYS.items():
        if only == backend or key not in sources:
            continue
        where = {
            "file": f"in {cfg}",
            "env": f"by {env_var(key)}",
            "cli": "by an override (--set)",
        }[sources[key]]
        raise ConfigError(
            f"{key} (set {where}) is a {BACKEND_NAMES[only]} setting, but store.url makes "
            f"this a {BACKEND_NAMES[backend]} index, where it would do nothing: remove it"
        )


def _resolve_config_file(home: Path, config_file: Path | str | None) -> Path | None:
    explicit = config_file or os.environ.get("RAGKEEP_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    default = home / CONFIG_FILE_NAME
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _read_env() -> dict[str, Any]:
    sections = set(Settings.model_fields)
    for name in os.environ:
        if not name.startswith(ENV_PREFIX) or name in LOCATION_ENV:
            continue
        head = name[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if head not in sections:
            raise ConfigError(
                f"unknown environment variable {name}; valid prefixes: "
                + ", ".join(f"{ENV_PREFIX}{s.upper()}__" for s in sorted(sections))
                + f", and {', '.join(sorted(LOCATION_ENV))}"
            )
    source = EnvSettingsSource(Settings, env_prefix=ENV_PREFIX, env_nested_delimiter="__")
    values = source()
    return {k: v for k, v in values.items() if k in sections}


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"llm.provider": "ollama"} -> {"llm": {"provider": "ollama"}}"""
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        parts = dotted.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def _deep_merge(
    into: dict[str, Any],
    layer: dict[str, Any],
    label: str,
    sources: dict[str, str],
    prefix: str = "",
) -> None:
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value, label, sources, dotted + ".")
        elif isinstance(value, dict):
            into[key] = {}
            _deep_merge(into[key], value, label, sources, dotted + ".")
        else:
            into[key] = value
            sources[dotted] = label


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            valid = _valid_keys(err["loc"][:-1])
            lines.append(f"unknown setting {loc!r}; valid keys here: {', '.join(valid)}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"invalid setting {loc!r} = {err.get('input')!r}: {msg}")
    return "\n".join(lines)


def _valid_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in loc:
        info = model.model_fields.get(str(part))
        ann = info.annotation if info else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return sorted(model.model_fields)


def iter_settings(settings: Settings) -> list[tuple[str, Any]]:
    """Every leaf setting as (dotted key, value), secrets masked, in declaration order."""
    rows: list[tuple[str, Any]] = []
    for section, value in settings:
        if isinstance(value, BaseModel):
            for key, leaf in value:
                shown = "********" if isinstance(leaf, SecretStr) else leaf
                rows.append((f"{section}.{key}", shown))
        elif isinstance(value, dict):  # flags: only those forced by settings appear
            rows.extend((f"{section}.{name}", forced) for name, forced in sorted(value.items()))
    return rows
