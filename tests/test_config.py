"""Settings (defaults < TOML file < RAGKEEP_* env < --set), feature flags, and their docs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import BaseModel

from ragkeep import Keep
from ragkeep.config import FLAGS, ConfigError, Settings, load_settings
from ragkeep.config.settings import BACKEND_KEYS, BACKEND_NAMES, StoreSettings, iter_settings

from conftest import ROOT, run_cli, write

pytestmark = pytest.mark.timeout(60)

CONFIG_DOCS = ROOT / "docs" / "configuration.md"


def toml(data_dir: Path, text: str) -> Path:
    return write(data_dir / "config.toml", text)


def config_error(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(*args, **kwargs)
    return str(info.value)


# -- precedence and provenance ----------------------------------------------------------------


def test_defaults_when_nothing_is_configured(tmp_path: Path) -> None:
    loaded = load_settings(tmp_path)
    assert loaded.settings == Settings.model_validate({})
    assert loaded.config_file is None
    assert loaded.sources == {}
    assert loaded.data_dir == tmp_path


def test_file_then_env_then_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = toml(
        tmp_path,
        '[search]\nk = 20\nmode = "bm25"\n[llm]\nmodel = "from-file"\n[embed]\nthreads = 3\n',
    )
    monkeypatch.setenv("RAGKEEP_SEARCH__K", "30")
    monkeypatch.setenv("RAGKEEP_LLM__MODEL", "from-env")

    loaded = load_settings(tmp_path, overrides={"search.k": "40"})

    s = loaded.settings
    assert (s.search.k, s.llm.model, s.embed.threads, s.search.mode) == (40, "from-env", 3, "bm25")
    assert s.embed.batch_size == 32  # untouched default
    assert loaded.config_file == cfg
    assert loaded.sources == {
        "search.k": "cli",
        "search.mode": "file",
        "llm.model": "env",
        "embed.threads": "file",
    }


def test_env_beats_file_without_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml(tmp_path, "[search]\nk = 20\n")
    monkeypatch.setenv("RAGKEEP_SEARCH__K", "30")
    loaded = load_settings(tmp_path)
    assert (loaded.settings.search.k, loaded.sources["search.k"]) == (30, "env")


def test_explicit_config_file_and_ragkeep_config_replace_the_data_dir_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml(tmp_path / "data", "[search]\nk = 20\n")
    other = write(tmp_path / "elsewhere.toml", "[search]\nk = 7\n")
    explicit = load_settings(tmp_path / "data", other)
    assert (explicit.settings.search.k, explicit.config_file) == (7, other)

    monkeypatch.setenv("RAGKEEP_CONFIG", str(other))
    from_env = load_settings(tmp_path / "data")
    assert (from_env.settings.search.k, from_env.config_file) == (7, other)


def test_ragkeep_home_chooses_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home-data"
    toml(home, "[search]\nk = 12\n")
    monkeypatch.setenv("RAGKEEP_HOME", str(home))
    loaded = load_settings()
    assert loaded.data_dir == home
    assert loaded.settings.search.k == 12
    assert load_settings(tmp_path / "explicit").data_dir == tmp_path / "explicit"


def test_values_are_typed_from_every_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEP_INGEST__IGNORE", '["build", "dist"]')
    monkeypatch.setenv("RAGKEEP_FLAGS__COLLAPSE_DOCUMENTS", "true")
    loaded = load_settings(
        tmp_path,
        overrides={
            "ingest.include_hidden": "true",
            "llm.temperature": "0.5",
            "flags.length_batching": "false",
        },
    )
    s = loaded.settings
    assert s.ingest.ignore == ("build", "dist")
    assert s.ingest.include_hidden is True
    assert s.llm.temperature == 0.5
    assert s.flags == {"collapse_documents": True, "length_batching": False}
    assert loaded.sources["flags.collapse_documents"] == "env"
    assert loaded.sources["flags.length_batching"] == "cli"


# -- mistakes stop start-up with the valid choices --------------------------------------------


def test_unknown_toml_key_names_the_valid_keys(tmp_path: Path) -> None:
    toml(tmp_path, "[search]\ntop_k = 5\n")
    message = config_error(tmp_path)
    assert "search.top_k" in message
    for key in ("candidates", "dense_weight", "fusion", "k", "mode", "rrf_k"):
        assert key in message


def test_unknown_toml_section_names_the_valid_sections(tmp_path: Path) -> None:
    toml(tmp_path, "[retrieval]\nk = 5\n")
    message = config_error(tmp_path)
    assert "retrieval" in message
    for section in ("chunking", "embed", "flags", "ingest", "llm", "search", "store"):
        assert section in message


def test_unknown_env_var_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEP_FOO", "1")
    message = config_error(tmp_path)
    assert "RAGKEEP_FOO" in message
    assert "RAGKEEP_LLM__" in message and "RAGKEEP_HOME" in message


def test_unknown_nested_env_var_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGKEEP_LLM__PROVIDR", "ollama")
    message = config_error(tmp_path)
    assert "llm.providr" in message and "provider" in message


def test_bad_env_value_lists_the_choices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEP_LLM__PROVIDER", "bad")
    message = config_error(tmp_path)
    assert "llm.provider" in message
    for choice in ("'none'", "'ollama'", "'openai'"):
        assert choice in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"search.k": "0"}, "search.k"),
        ({"embed.threads": "lots"}, "embed.threads"),
        ({"search.mode": "fuzzy"}, "'hybrid'"),
        ({"chunking.overlap_tokens": "120"}, "less than half"),
        ({"store.synchronous": "OFF"}, "'FULL'"),
    ],
)
def test_bad_values_are_rejected(tmp_path: Path, overrides: dict[str, Any], expected: str) -> None:
    assert expected in config_error(tmp_path, overrides=overrides)


def test_unknown_flag_in_toml_lists_the_valid_flags(tmp_path: Path) -> None:
    toml(tmp_path, "[flags]\nturbo = true\n")
    message = config_error(tmp_path)
    assert "turbo" in message
    for name in FLAGS:
        assert name in message


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    cfg = toml(tmp_path, "[search\nk = 5\n")
    message = config_error(tmp_path)
    assert str(cfg) in message and "invalid TOML" in message


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    assert "not found" in config_error(tmp_path, tmp_path / "nope.toml")


# -- through the CLI --------------------------------------------------------------------------


def test_cli_invalid_toml_exits_2_naming_the_file(tmp_path: Path) -> None:
    cfg = toml(tmp_path, 'llm = "unterminated\n')
    result = run_cli("status", data_dir=tmp_path)
    assert result.code == 2
    assert str(cfg) in result.stderr


def test_cli_missing_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = run_cli("--config", str(missing), "status", data_dir=tmp_path / "data")
    assert result.code == 2
    assert str(missing) in result.stderr
    by_env = run_cli("config", "show", data_dir=tmp_path, env={"RAGKEEP_CONFIG": str(missing)})
    assert by_env.code == 2 and str(missing) in by_env.stderr


def test_cli_unknown_env_var_exits_2(tmp_path: Path) -> None:
    result = run_cli("config", "show", data_dir=tmp_path, env={"RAGKEEP_SEARCHK": "3"})
    assert result.code == 2
    assert "RAGKEEP_SEARCHK" in result.stderr and "RAGKEEP_SEARCH__" in result.stderr


def test_config_show_json_gives_value_and_source_and_masks_the_api_key(tmp_path: Path) -> None:
    cfg = toml(tmp_path, '[llm]\napi_key = "sk-very-secret"\nprovider = "openai"\n')
    result = run_cli(
        "--set",
        "llm.model=from-cli",
        "config",
        "show",
        "--json",
        data_dir=tmp_path,
        env={"RAGKEEP_SEARCH__K": "7"},
    )
    assert result.code == 0, result.stderr
    assert "sk-very-secret" not in result.stdout + result.stderr
    shown = result.json()
    assert shown["data_dir"] == str(tmp_path)
    assert shown["config_file"] == str(cfg)
    settings = shown["settings"]
    assert settings["llm.api_key"] == {"value": "********", "source": "file"}
    assert settings["llm.provider"] == {"value": "openai", "source": "file"}
    assert settings["search.k"] == {"value": 7, "source": "env"}
    assert settings["llm.model"] == {"value": "from-cli", "source": "cli"}
    assert settings["embed.threads"] == {"value": 2, "source": "default"}
    expected_keys = {key for key, _ in iter_settings(Settings.model_validate({}))}
    assert set(settings) == expected_keys
    assert all(set(v) == {"value", "source"} for v in settings.values())


def test_config_show_text_masks_the_api_key(tmp_path: Path) -> None:
    result = run_cli(
        "config", "show", data_dir=tmp_path, env={"RAGKEEP_LLM__API_KEY": "sk-very-secret"}
    )
    assert result.code == 0, result.stderr
    assert "sk-very-secret" not in result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if "llm.api_key" in line)
    assert "********" in row and "env" in row


def test_config_show_names_the_source_of_forced_flags(tmp_path: Path) -> None:
    result = run_cli(
        "config",
        "show",
        "--json",
        data_dir=tmp_path,
        env={"RAGKEEP_FLAGS__COLLAPSE_DOCUMENTS": "true"},
    )
    assert result.code == 0, result.stderr
    settings = result.json()["settings"]
    flag_rows = {k: v for k, v in settings.items() if k == "flags" or k.startswith("flags.")}
    assert any(row["source"] == "env" for row in flag_rows.values()), flag_rows


def flag_states(data_dir: Path, **kwargs: Any) -> dict[str, dict[str, Any]]:
    result = run_cli("flags", "list", "--json", data_dir=data_dir, **kwargs)
    assert result.code == 0, result.stderr
    return {f["name"]: f for f in result.json()}


def test_flags_list_json_describes_every_flag(tmp_path: Path) -> None:
    states = flag_states(tmp_path)
    assert set(states) == set(FLAGS)
    for name, spec in FLAGS.items():
        assert states[name] == {
            "name": name,
            "enabled": spec.default,
            "default": spec.default,
            "stage": spec.stage.value,
            "source": "default",
            "description": spec.description,
        }


def test_flags_enable_disable_reset_persist_across_processes(tmp_path: Path) -> None:
    enabled = run_cli("flags", "enable", "collapse_documents", data_dir=tmp_path)
    assert enabled.code == 0, enabled.stderr
    assert "collapse_documents is enabled" in enabled.stderr
    state = flag_states(tmp_path)["collapse_documents"]
    assert (state["enabled"], state["source"]) == (True, "database")

    assert run_cli("flags", "disable", "answer_streaming", data_dir=tmp_path).code == 0
    states = flag_states(tmp_path)
    assert (states["answer_streaming"]["enabled"], states["answer_streaming"]["source"]) == (
        False,
        "database",
    )
    assert states["collapse_documents"]["enabled"] is True  # still there

    assert run_cli("flags", "reset", "collapse_documents", data_dir=tmp_path).code == 0
    state = flag_states(tmp_path)["collapse_documents"]
    assert (state["enabled"], state["source"]) == (False, "default")


def test_a_flag_forced_by_settings_wins_over_the_database(tmp_path: Path) -> None:
    assert run_cli("flags", "enable", "collapse_documents", data_dir=tmp_path).code == 0
    toml(tmp_path, "[flags]\ncollapse_documents = false\n")

    state = flag_states(tmp_path)["collapse_documents"]
    assert (state["enabled"], state["source"]) == (False, "settings")
    by_env = flag_states(tmp_path, env={"RAGKEEP_FLAGS__LENGTH_BATCHING": "false"})
    assert (by_env["length_batching"]["enabled"], by_env["length_batching"]["source"]) == (
        False,
        "settings",
    )
    again = run_cli("flags", "enable", "collapse_documents", data_dir=tmp_path)
    assert again.code == 0
    assert "overridden by settings" in again.stderr


def test_unknown_flag_name_exits_2_naming_the_valid_flags(tmp_path: Path) -> None:
    for command in ("enable", "disable", "reset"):
        result = run_cli("flags", command, "nope", data_dir=tmp_path)
        assert result.code == 2, command
        assert "nope" in result.stderr
        assert all(name in result.stderr for name in FLAGS)


def test_cli_unknown_flag_in_settings_exits_2(tmp_path: Path) -> None:
    result = run_cli("--set", "flags.turbo=true", "flags", "list", data_dir=tmp_path)
    assert result.code == 2
    assert "turbo" in result.stderr
    assert all(name in result.stderr for name in FLAGS)


# -- documentation ----------------------------------------------------------------------------


def _load_generator() -> ModuleType:
    path = ROOT / "scripts" / "gen_config_docs.py"
    spec = importlib.util.spec_from_file_location("gen_config_docs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_has_a_description() -> None:
    missing = []
    for section, field in Settings.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            missing += [f"{section}.{k}" for k, f in ann.model_fields.items() if not f.description]
        elif not field.description:
            missing.append(section)
    assert missing == []
    assert all(spec.description for spec in FLAGS.values())


def test_configuration_docs_are_up_to_date() -> None:
    generated = _load_generator().generate()
    committed = CONFIG_DOCS.read_text(encoding="utf-8") if CONFIG_DOCS.exists() else ""
    assert committed == generated, (
        "docs/configuration.md is out of date with the settings models or the flags; "
        "regenerate it with: .venv/bin/python scripts/gen_config_docs.py"
    )


def test_configuration_docs_mention_every_key_flag_and_env_var() -> None:
    text = _load_generator().generate()
    for key, _ in iter_settings(Settings.model_validate({})):
        if key == "flags":
            continue
        assert f"`{key}`" in text, key
        env = "RAGKEEP_" + key.upper().replace(".", "__")
        assert f"`{env}`" in text, env
    for name in FLAGS:
        assert f"`{name}`" in text, name


def test_store_url_names_the_database(tmp_path: Path, docs_dir: Path) -> None:
    write(docs_dir / "a.md", "Wrens are small brown birds with upright tails.")
    elsewhere = tmp_path / "elsewhere" / "index.db"
    for url, expected in (
        ("sqlite:///named.db", tmp_path / "data" / "named.db"),
        (f"sqlite:///{elsewhere}", elsewhere),
    ):
        with Keep(tmp_path / "data", overrides={"store.url": url}) as keep:
            keep.add([docs_dir])
            assert keep.status().database_path == str(expected)
            assert keep.search("wrens", 1, "bm25")[0].path.endswith("a.md")
        assert expected.is_file() and (expected.parent / "writer.lock").exists()
    # Only the named file: the default database was never created.
    assert sorted(p.name for p in (tmp_path / "data").glob("*.db")) == ["named.db"]


@pytest.mark.parametrize("url", ["mysql://db/ragkeep", "postgresql://", "sqlite:///", "index.db"])
def test_an_unusable_store_url_is_refused_in_one_line(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match=r"store\.url"):
        Keep(tmp_path / "data", overrides={"store.url": url})
    result = run_cli("--set", f"store.url={url}", "status", data_dir=tmp_path / "data")
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "sqlite:///" in result.stderr and len(result.stderr.strip().splitlines()) == 1


PG_URL = "postgresql://ragkeep@127.0.0.1:1/none"  # never connected to: refused before


def test_a_setting_of_the_other_backend_is_refused_naming_where_it_was_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = toml(tmp_path, '[store]\nsynchronous = "FULL"\nmax_size_mb = 100\n')
    message = config_error(tmp_path, overrides={"store.url": PG_URL})
    assert f"store.max_size_mb (set in {cfg}) is a SQLite setting" in message  # the first
    assert "PostgreSQL index" in message and "remove it" in message
    cfg.unlink()
    monkeypatch.setenv("RAGKEEP_STORE__POOL_SIZE", "4")
    message = config_error(tmp_path)
    assert "store.pool_size (set by RAGKEEP_STORE__POOL_SIZE)" in message
    assert "PostgreSQL setting" in message and "SQLite index" in message
    monkeypatch.delenv("RAGKEEP_STORE__POOL_SIZE")
    message = config_error(tmp_path, overrides={"store.hnsw_ef_search": 40})
    assert "store.hnsw_ef_search (set by an override (--set))" in message


def test_each_backend_takes_its_own_settings_and_the_defaults_of_both(tmp_path: Path) -> None:
    pg = load_settings(tmp_path, overrides={"store.url": PG_URL, "store.pool_size": 2})
    assert pg.settings.store.pool_size == 2 and pg.settings.store.synchronous == "NORMAL"
    lite = load_settings(tmp_path, overrides={"store.synchronous": "FULL"})
    assert lite.settings.store.synchronous == "FULL" and lite.settings.store.pool_size == 8


def test_cli_a_setting_of_the_other_backend_exits_2_in_one_line(tmp_path: Path) -> None:
    env = {"RAGKEEP_STORE__BUSY_TIMEOUT_MS": "5"}
    result = run_cli("config", "show", data_dir=tmp_path, env=env)
    assert result.code == 0, result.stderr  # SQLite's own, on SQLite: accepted
    result = run_cli("--set", f"store.url={PG_URL}", "status", data_dir=tmp_path, env=env)
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "store.busy_timeout_ms (set by RAGKEEP_STORE__BUSY_TIMEOUT_MS)" in result.stderr


def test_the_descriptions_name_the_backend_of_every_backend_only_key() -> None:
    """The docs say a key is refused on the other backend when its description starts with
    "SQLite:" or "PostgreSQL:": that prefix and BACKEND_KEYS must agree."""
    for name, field in StoreSettings.model_fields.items():
        only = BACKEND_KEYS.get(f"store.{name}")
        labelled = [
            b
            for b, label in BACKEND_NAMES.items()
            if (field.description or "").startswith(f"{label}:")
        ]
        assert labelled == ([only] if only else []), name
