#!/usr/bin/env bash
# Smoke test of a plain install: `pip install .` with NO extras into a fresh venv, then the
# installed `ragkeep` indexes examples/docs and runs every everyday command (plain and --json)
# in a temporary data dir. Each must exit 0 with no traceback. The `dev` extra pulls in the
# optional packages (usearch, mcp), so the unit tests cannot catch a hard import of one of
# them. `ragkeep mcp`, which needs the `mcp` extra, must say so in one line and exit 2; and
# `ragkeep serve` must start, answer a search over HTTP on 127.0.0.1, and stop on SIGTERM.
#
# Network: only pip (PyPI, for the dependencies; its cache is reused). The ragkeep runs are
# offline: no LLM configured, HF_HUB_OFFLINE=1, and proxies pointing nowhere so an accidental
# HTTP request fails instead of leaving the machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DOCS="$ROOT/examples/docs"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/ragkeep-smoke.XXXXXX")"
# setuptools builds in ROOT/build and never empties it: a module deleted from src/ would still
# be in build/lib and so in the wheel. Remove it afterwards if it is ours.
if [[ -e "$ROOT/build" ]]; then
    echo "smoke: warning: $ROOT/build exists; stale files in it can end up in the wheel" >&2
    trap 'rm -rf "$TMP"' EXIT
else
    trap 'rm -rf "$TMP" "$ROOT/build"' EXIT
fi
VENV="$TMP/venv"
DATA="$TMP/data"

# Nothing from the caller's environment may point ragkeep or Python elsewhere.
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^RAGKEEP_' || true)

echo "smoke: installing ragkeep (no extras) into $VENV"
"$PYTHON" -m venv "$VENV"
# --no-compile halves the install time; the first ragkeep run writes the bytecode it needs.
(cd "$ROOT" && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile .)

# The point of the test: the optional `ann` and `mcp` extras are really absent.
for module in usearch mcp psycopg; do
    if (cd "$TMP" && "$VENV/bin/python" -c "import $module" 2>/dev/null); then
        echo "smoke: $module is importable in $VENV: this is not a plain install" >&2
        exit 1
    fi
done

RK=(
    env HF_HUB_OFFLINE=1 XDG_CACHE_HOME="$TMP/cache"
    HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9
    http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 all_proxy=http://127.0.0.1:9
    NO_PROXY= no_proxy=
    "$VENV/bin/ragkeep" --data-dir "$DATA" --set llm.provider=none
)

passed=0
failed=0

# report LABEL PROBLEM COMMAND: count the check; on a problem print it with the captured output.
report() {
    local label=$1 problem=$2 command=$3
    if [[ -z $problem ]]; then
        echo "ok: $label"
        passed=$((passed + 1))
    else
        echo "FAIL: $label ($problem): $command"
        echo "--- stdout"
        cat "$TMP/stdout"
        echo "--- stderr"
        cat "$TMP/stderr"
        echo "---"
        failed=$((failed + 1))
    fi
}

# check ARGS...: `ragkeep ARGS` must exit 0 without a traceback (with --json: print JSON).
check() {
    local rc=0
    (cd "$TMP" && "${RK[@]}" "$@") >"$TMP/stdout" 2>"$TMP/stderr" || rc=$?
    local label="ragkeep $1" problem=""
    [[ " $* " == *" --json "* ]] && label+=" --json"
    if [[ $rc -ne 0 ]]; then
        problem="exit status $rc"
    elif grep -q "Traceback" "$TMP/stderr"; then
        problem="traceback on stderr"
    elif [[ " $* " == *" --json "* ]] && ! "$VENV/bin/python" -c \
        'import json, sys; json.load(sys.stdin)' <"$TMP/stdout" 2>/dev/null; then
        problem="--json output is not JSON"
    fi
    report "$label" "$problem" "ragkeep $*"
}

search_q="how often should tomatoes be watered"
ask_q="How long does the UPS keep the server running during a power cut?"
for json in "" "--json"; do
    # ${json:+"$json"} expands to nothing, not to an empty argument, when json is empty.
    check add "$DOCS" ${json:+"$json"}
    check search "$search_q" -k 3 ${json:+"$json"}
    check ask "$ask_q" ${json:+"$json"}
    check sync ${json:+"$json"}
    check status ${json:+"$json"}
    check doctor ${json:+"$json"}
    # Exit 0: a handful of requests is "no data", and a CLI process stays far below the limit.
    check health ${json:+"$json"}
    check backup ${json:+"$json"}
    check backup list ${json:+"$json"}
    check rollback ${json:+"$json"}  # to the backup just made: restore, then prune
done
check reembed --json
check monitor --count 1 --interval 0.1  # the local index's dashboard: rich only, no extra

# check_needs_extra: a command that needs a missing extra (`ragkeep mcp`, a PostgreSQL
# store.url) exits 2 with one line on stderr naming the extra, nothing on stdout and no
# traceback. stdin is empty, so a server that did start by mistake would stop at once
# instead of waiting for a client.
check_needs_extra() {
    local extra=$1 label=$2
    shift 2
    local rc=0
    (cd "$TMP" && "${RK[@]}" "$@") </dev/null >"$TMP/stdout" 2>"$TMP/stderr" || rc=$?
    local problem=""
    if [[ $rc -ne 2 ]]; then
        problem="exit status $rc, expected 2"
    elif grep -q "Traceback" "$TMP/stdout" "$TMP/stderr"; then
        problem="traceback"
    elif [[ -s "$TMP/stdout" ]]; then
        problem="output on stdout"
    elif [[ $(wc -l <"$TMP/stderr") -ne 1 ]] || ! grep -qF "pip install 'ragkeep[$extra]'" "$TMP/stderr"; then
        problem="stderr is not one line naming the $extra extra"
    fi
    report "$label (no extra)" "$problem" "ragkeep $*"
}

check_needs_extra mcp "ragkeep mcp" mcp
check_needs_extra postgres "ragkeep status on PostgreSQL" \
    --set store.url=postgresql://nobody@127.0.0.1:1/none status

# check_serve: `ragkeep serve` (no extra needed) starts, becomes ready, answers a search over
# HTTP, and stops on SIGTERM with exit 0 and no traceback.
check_serve() {
    local port rc=0 problem=""
    port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    (cd "$TMP" && exec "${RK[@]}" serve --port "$port") >"$TMP/stdout" 2>"$TMP/stderr" &
    local pid=$!
    if ! "$VENV/bin/python" - "$port" <<'PY'
import json, sys, time, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(600):
    try:
        if opener.open(base + "/readyz", timeout=2).status == 200:
            break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the server did not become ready")
hits = json.load(opener.open(base + "/api/search?q=tomatoes&k=1", timeout=30))["hits"]
sys.exit(0 if hits else "the search found nothing")
PY
    then
        problem="no answer over HTTP"
    fi
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || rc=$?
    if [[ -z $problem && $rc -ne 0 ]]; then
        problem="exit status $rc after SIGTERM"
    elif [[ -z $problem ]] && grep -q "Traceback" "$TMP/stderr"; then
        problem="traceback on stderr"
    fi
    report "ragkeep serve" "$problem" "ragkeep serve --port $port"
}

check_serve

echo "smoke: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
