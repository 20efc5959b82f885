#!/usr/bin/env bash
# The benchmarks that reuse an existing SciFact index (after bench_ingest.py), one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY benchmarks/bench_sync.py
$PY -m ragkeep eval ../shared/eval/scifact --data-dir benchmarks/.work/scifact --json > /tmp/ragkeep-eval.json
$PY - <<'PYEOF'
import json, sys
sys.path.insert(0, "benchmarks")
from common import write_result
data = json.load(open("/tmp/ragkeep-eval.json"))
write_result("eval", {"command": "ragkeep eval ../shared/eval/scifact --data-dir benchmarks/.work/scifact --json", **data})
PYEOF
$PY benchmarks/fusion_sweep.py
$PY benchmarks/bench_query.py
$PY benchmarks/bench_cache.py
