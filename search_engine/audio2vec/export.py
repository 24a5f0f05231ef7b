"""Write a model folder's inference network (encoder + g) as ONNX, the file the engine runs.

Training writes it beside the Keras weights (:func:`.train.train`); for a folder made before,
run ``python -m search_engine.audio2vec.export FOLDER...``. Needs the ``onnx`` package (the
``train`` extra), not TensorFlow: the graph is built from the weights read by :mod:`.forward`.
The file records the model id of the weights it was made from; the engine ignores a file whose id
is not its folder's (and falls back on the numpy forward pass).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .encoder import ONNX_FILE, WEIGHT_FILES
from .forward import Network, load_network
from .model import Architecture

#: ONNX operator set of the graph (ONNX Runtime ≥ 1.12 runs it)
OPSET = 17


def network_to_onnx(net: Network, *, window_frames: int, n_mels: int, model_id: str):
    """The ONNX model of :func:`.forward.forward`: input ``x`` [n, window_frames, n_mels] float32,
    output ``z`` [n, dim] float32, unit L2 norm."""
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def const(name: str, value, dtype=np.float32) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    nodes.append(helper.make_node("Unsqueeze", ["x", const("channel_axis", [1], np.int64)], ["h"]))
    cur, h, w = "h", window_frames, n_mels
    for i, conv in enumerate(net.convs):
        c_in, c_out = conv.kernel.shape[0] // 9, conv.kernel.shape[1]
        s = conv.stride
        oh, ow = -(-h // s), -(-w // s)
        ph, pw = max((oh - 1) * s + 3 - h, 0), max((ow - 1) * s + 3 - w, 0)
        kernel = conv.kernel.reshape(3, 3, c_in, c_out).transpose(3, 2, 0, 1)  # HWIO -> OIHW
        nodes.append(helper.make_node(
            "Conv", [cur, const(f"conv{i}_kernel", kernel), const(f"conv{i}_bias", conv.bias)], [f"conv{i}"],
            kernel_shape=[3, 3], strides=[s, s], pads=[ph // 2, pw // 2, ph - ph // 2, pw - pw // 2],  # TF 'same'
        ))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        cur, h, w = f"relu{i}", oh, ow
    nodes += [
        helper.make_node("Transpose", [cur], ["nhwc"], perm=[0, 2, 3, 1]),  # Keras flattens NHWC
        helper.make_node("Flatten", ["nhwc"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", const("bottleneck_kernel", net.dense[0]), const("bottleneck_bias", net.dense[1])], ["bottleneck"]),
        helper.make_node("Gemm", ["bottleneck", const("g_kernel", net.project[0]), const("g_bias", net.project[1])], ["projected"]),
        helper.make_node("LpNormalization", ["projected"], ["z"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes, "audio2vec", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", window_frames, n_mels])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", net.project[0].shape[1]])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="audio2vec")
    model.ir_version = 8  # readable by older ONNX Runtime releases too
    helper.set_model_props(model, {"model_id": model_id})
    return model


def export(folder: Path) -> Path:
    """Write ``folder/encoder.onnx`` from the folder's Keras weights and ``config.json``."""
    import onnx

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    arch = Architecture(**{**config["architecture"], "filters": tuple(config["architecture"]["filters"])})
    net = load_network(folder / WEIGHT_FILES["encoder"], folder / WEIGHT_FILES["g"], strided=len(arch.filters))
    f = config["features"]
    model = network_to_onnx(net, window_frames=f["window_frames"], n_mels=f["n_mels"], model_id=config["model_id"])
    onnx.checker.check_model(model)
    out = folder / ONNX_FILE
    tmp = out.with_suffix(".part")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - thin shell
    folders = argv if argv is not None else sys.argv[1:]
    if not folders:
        print("usage: python -m search_engine.audio2vec.export MODEL_FOLDER...", file=sys.stderr)
        return 2
    for folder in folders:
        print(export(Path(folder)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
