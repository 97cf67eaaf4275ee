"""Would static (calibrated) int8 let the transformer runner pad and batch texts? A probe, not a backend.

Dynamic int8 (the served ``onnx-int8``) scales activations over the whole input tensor, so a text's answer moves
with its batch mates and the runner runs one unpadded text per call. Static int8 fixes the activation scales at
export time from calibration texts, so a padded batch answers each text exactly as alone; the question is whether
it is faster and as accurate. This quantises the registered model's fp32 export (MatMul weights per channel,
activations by MinMax over ``--calibration`` real reviews, QDQ format) and compares, on one thread: ms per text alone
and in length-sorted padded batches of 8, label agreement with fp32, and whether a text's logits change in a batch.

    .venv/bin/python -m experiments.probe_static_int8 [--texts 400] [--out reports/static_int8_probe.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.benchmark import load_texts
from sentiment.model.aliases import require_serving_tag
from sentiment.model.inference import SentimentModel
from sentiment.model.registry import resolve
from sentiment.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--texts", type=int, default=400, help="real reviews to time and compare")
    p.add_argument("--calibration", type=int, default=200, help="real reviews (disjoint from the timed ones)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    settings = load_settings()
    texts = load_texts(settings.paths.shared_data_dir, args.texts + args.calibration, seed=0)
    timed, calib = texts[: args.texts], texts[args.texts :]
    tag = require_serving_tag(settings.model)
    # Loading the served backend leaves the verified fp32 export and the dynamic int8 file in the cache.
    model = SentimentModel.from_store(
        tag, num_threads=1, backend="onnx-int8", onnx_cache=settings.paths.data_dir / "onnx"
    )
    assert model.onnx is not None, model.backend_error
    dynamic = model.onnx.path
    fp32 = dynamic.with_name("model.onnx")

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(resolve(tag)[0]))  # padding batches: the checkpoint's own tokenizer

    def encode(batch: list[str]) -> dict[str, Any]:
        enc = tokenizer(batch, truncation=True, max_length=model.max_length, padding=True, return_tensors="np")
        return {k: v.astype(np.int64) for k, v in enc.items()}

    class Calibration(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._batches = iter([encode(calib[i : i + 8]) for i in range(0, len(calib), 8)])

        def get_next(self) -> dict[str, Any] | None:
            return next(self._batches, None)

    static = Path(tempfile.mkdtemp(prefix="static-int8-")) / "model.static.onnx"
    start = time.perf_counter()
    quantize_static(
        str(fp32),
        str(static),
        Calibration(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"ActivationSymmetric": True},
    )
    quantise_s = time.perf_counter() - start

    def session(path: Path) -> Any:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    sessions = {"fp32": session(fp32), "dynamic int8 (served)": session(dynamic), "static int8": session(static)}
    names = [i.name for i in sessions["fp32"].get_inputs()]

    def run(name: str, batch: list[str]) -> np.ndarray:
        enc = encode(batch)
        out: np.ndarray = sessions[name].run(["logits"], {k: enc[k] for k in names})[0]
        return out

    reference = np.concatenate([run("fp32", [t]) for t in timed])
    order = sorted(range(len(timed)), key=lambda i: len(timed[i]))
    rows = []
    for name in ("dynamic int8 (served)", "static int8"):
        cpu = time.process_time()
        alone = np.concatenate([run(name, [t]) for t in timed])
        alone_ms = (time.process_time() - cpu) * 1000.0 / len(timed)
        batched = np.zeros_like(alone)
        cpu = time.process_time()
        for i in range(0, len(order), 8):
            idx = order[i : i + 8]
            batched[idx] = run(name, [timed[j] for j in idx])
        batch_ms = (time.process_time() - cpu) * 1000.0 / len(timed)
        row = {
            "model": name,
            "ms_per_text_alone": round(alone_ms, 2),
            "ms_per_text_padded_batches_of_8": round(batch_ms, 2),
            "label_agreement_with_fp32": round(float((alone.argmax(1) == reference.argmax(1)).mean()), 4),
            "labels_equal_alone_and_in_a_batch": round(float((alone.argmax(1) == batched.argmax(1)).mean()), 4),
            "max_logit_change_in_a_batch": float(np.abs(alone - batched).max()),
        }
        rows.append(row)
        print(json.dumps(row))
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model_tag": tag,
        "texts": len(timed),
        "calibration_texts": len(calib),
        "quantise_s": round(quantise_s, 1),
        "rows": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
