"""One process of the stress test: THREADS threads share one Keep, each doing OPS random
operations (write+add, delete+remove, search, sync) on files it owns. Every search also
checks that its snapshot holds no document in part (a reader sees a whole version or none).

    python tests/stress_worker.py DATA DOCS PROCESS_ID THREADS OPS SEED

Prints JSON: the operations done, every error seen, and each owned file's final content.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
from pathlib import Path

from ragkeep import Keep


def half_written(keep: Keep) -> list[str]:
    """The documents that, in one snapshot, have other than the chunks they record."""
    with keep.store.snapshot() as snap:  # store reads nest in the snapshot's transaction
        return [
            f"{d.path}: {len(found)} of {d.chunk_count} chunks"
            for d in keep.store.documents()
            if len(found := snap.document_chunks(d.path)) != d.chunk_count
        ]


WORDS = ["tide", "reef", "coral", "kelp", "current", "salt", "shore", "wave", "drift"]


def main() -> None:
    data, docs = Path(sys.argv[1]), Path(sys.argv[2])
    proc, threads, ops, seed = (int(a) for a in sys.argv[3:7])
    errors: list[str] = []
    final: dict[str, str | None] = {}
    done = [0]
    lock = threading.Lock()
    keep = Keep(data)

    def worker(tid: int) -> None:
        rng = random.Random(seed * 1000 + proc * 100 + tid)
        files = [docs / f"p{proc}-t{tid}-f{j}.txt" for j in range(4)]
        mine: dict[str, str | None] = {}
        for i in range(ops):
            path = rng.choice(files)
            r = rng.random()
            try:
                if r < 0.4:
                    body = " ".join(rng.choices(WORDS, k=rng.randint(5, 60)))
                    content = f"Process {proc} thread {tid} op {i}: {body}.\n"
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(content)
                    os.replace(tmp, path)  # readers never see half a file
                    keep.add([path])
                    mine[str(path)] = content
                elif r < 0.55:
                    path.unlink(missing_ok=True)
                    keep.remove([path])
                    mine[str(path)] = None
                elif r < 0.9:
                    q = " ".join(rng.choices(WORDS, k=2))
                    keep.search(q, 5, rng.choice(["bm25", "dense", "hybrid"]))
                    torn = half_written(keep)
                    if torn:
                        raise AssertionError(f"a snapshot holds half a document: {torn}")
                else:
                    keep.sync()
            except Exception as exc:  # every error is a failure of the test
                with lock:
                    errors.append(f"p{proc} t{tid} op {i}: {type(exc).__name__}: {exc}")
            with lock:
                done[0] += 1
        with lock:
            final.update(mine)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    keep.close()
    print(json.dumps({"ops": done[0], "errors": errors, "final": final}))


if __name__ == "__main__":
    main()
