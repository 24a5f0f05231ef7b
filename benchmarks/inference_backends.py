"""Encoder inference backends: windows per second, import cost, and agreement with Keras.

Runs the default model on the same batch of real windows (SuperTuxKart music) with ONNX Runtime
(the bundled ``encoder.onnx``: what the engine ships), the numpy forward pass
(:mod:`search_engine.audio2vec.forward`: the fallback for model folders without an ONNX file),
Keras ``predict``, a ``tf.function`` (what the engine ran before), the same with XLA
(``jit_compile``), and TFLite (XNNPACK), in this process; prints windows/s at several batch sizes,
the seconds a fresh process takes to import each runtime, and the largest absolute difference of
each backend's vectors from the ``tf.function`` ones.

    python benchmarks/inference_backends.py [--windows 4096] [--threads N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, stk_music_library, write_result  # noqa: E402


def real_windows(n: int) -> np.ndarray:
    """``n`` prepared encoder windows cut from the benchmark music every 0.512 s."""
    from search_engine.audio import load
    from search_engine.audio2vec import Encoder

    enc = Encoder.load("default")
    parts, total = [], 0
    for f in stk_music_library():
        y, _ = load(f, sr=enc.features.sample_rate_hz)
        x, _ = enc.windows(y, hop_frames=32)
        parts.append(x)
        total += len(x)
        if total >= n:
            break
    return np.ascontiguousarray(np.concatenate(parts)[:n], dtype=np.float32)


def backends(threads: int | None):
    """``{name: f(x) -> vectors}`` for every backend this TensorFlow offers."""
    import tensorflow as tf

    from search_engine.audio2vec import Encoder

    enc = Encoder.load("default")
    f = enc.features
    model = enc.keras_model()
    spec = tf.TensorSpec([None, f.window_frames, f.n_mels], tf.float32)
    from search_engine.audio2vec.forward import forward

    net = enc.network()
    enc.build()
    assert enc.backend == "onnxruntime"
    out = {
        "onnxruntime": enc.encode_windows,
        "numpy_forward": lambda x: forward(net, x),
        "keras_predict": lambda x: model.predict(x, batch_size=len(x), verbose=0),
        "tf_function": tf.function(lambda x: model(x, training=False), input_signature=[spec]),
        "tf_function_xla": tf.function(lambda x: model(x, training=False), input_signature=[spec], jit_compile=True),
    }
    try:
        conv = tf.lite.TFLiteConverter.from_concrete_functions([out["tf_function"].get_concrete_function()], model)
        blob = conv.convert()
        interp = tf.lite.Interpreter(model_content=blob, num_threads=threads)
        inp = interp.get_input_details()[0]
        res = interp.get_output_details()[0]

        def tflite(x):
            interp.resize_tensor_input(inp["index"], x.shape)
            interp.allocate_tensors()
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            return interp.get_tensor(res["index"])

        out["tflite_xnnpack"] = tflite
    except Exception as exc:  # report, do not hide: the table then lacks the row
        print(f"TFLite unavailable: {exc}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=4096)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512, 2048])
    ap.add_argument("--threads", type=int, default=None, help="TFLite threads (default: TFLite's)")
    args = ap.parse_args()
    info = machine()
    print(info)
    x = real_windows(args.windows)
    fns = backends(args.threads)
    ref = np.asarray(fns["tf_function"](x[:512]))
    rows = {}
    for name, fn in fns.items():
        z = np.asarray(fn(x[:512]))  # warm up (tracing, compilation)
        row = {"max_abs_diff_vs_tf_function": float(np.abs(z - ref).max())}
        for bs in args.batch_sizes:
            t0 = time.perf_counter()
            for i in range(0, len(x), bs):
                fn(x[i : i + bs])
            dt = time.perf_counter() - t0
            row[f"windows_per_s_batch_{bs}"] = round(len(x) / dt)
        rows[name] = row
        print(name, row)
    imports = {}
    for name, module in (("onnxruntime", "onnxruntime"), ("numpy_forward", "h5py"), ("tensorflow", "tensorflow")):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import numpy, {module}"], check=True, capture_output=True)
        imports[name] = round(time.perf_counter() - t0, 3)
    print("fresh process importing numpy and the runtime, seconds:", imports)
    result = {"machine": info, "command": "python benchmarks/inference_backends.py " + " ".join(sys.argv[1:]),
              "windows": len(x), "backends": rows, "import_s": imports}
    print("wrote", write_result("inference_backends", result))


if __name__ == "__main__":
    main()
