"""The Audio2Vec inference network as a numpy forward pass: window -> unit vector, no TensorFlow.

The network of :mod:`.model` (stride-2 3×3 convolutions with ReLU, one more 3×3 convolution at
the last scale, a dense bottleneck, the projection g() and L2 normalisation) is small enough that
numpy's matrix product runs it as fast as TensorFlow does on a CPU, and importing numpy costs
milliseconds where TensorFlow costs seconds (``benchmarks/inference_backends.py``). Weights are read
from the Keras ``.weights.h5`` files that training writes (:func:`load_network`) or from the ONNX
file made of them (:func:`network_from_onnx`: the bundled models ship only that, one copy each).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Keras UnitNormalization's floor on the squared norm
_EPSILON = 1e-12


@dataclass(frozen=True)
class Conv:
    """One 3×3 convolution with bias and ReLU, 'same' padding as TensorFlow pads it."""

    kernel: np.ndarray  #: [shape=(3, 3, c_in, c_out)] reshaped to (9 * c_in, c_out)
    bias: np.ndarray  #: [shape=(c_out,)]
    stride: int


@dataclass(frozen=True)
class Network:
    """Weights of one encoder + projection, as numpy arrays (float32)."""

    convs: tuple[Conv, ...]
    dense: tuple[np.ndarray, np.ndarray]  #: bottleneck (kernel [flat, bottleneck], bias)
    project: tuple[np.ndarray, np.ndarray]  #: g() (kernel [bottleneck, dim], bias)


def _layer_vars(path: Path) -> list[tuple[str, list[np.ndarray]]]:
    """``(layer name, [variables])`` of a Keras 3 ``.weights.h5`` file, in the order the layers were
    made (``conv2d``, ``conv2d_1``, ... ``conv2d_10``), only layers with variables."""
    import h5py

    def order(name: str) -> tuple[str, int]:
        m = re.fullmatch(r"(.*?)(?:_(\d+))?", name)
        return m.group(1), int(m.group(2) or 0)

    with h5py.File(path, "r") as f:
        layers = f["layers"]
        out = []
        for name in sorted(layers, key=order):
            group = layers[name].get("vars")
            if group is not None and len(group):
                out.append((name, [np.asarray(group[str(i)], dtype=np.float32) for i in range(len(group))]))
    return out


def load_network(encoder_h5: Path, projection_h5: Path, *, strided: int) -> Network:
    """Read an encoder (convolutions + bottleneck) and projection g() saved by Keras.

    As :func:`.model.build_encoder` makes them, the first ``strided`` convolutions (one per entry
    of ``Architecture.filters``) have stride 2 and any after them stride 1."""
    enc = _layer_vars(encoder_h5)
    convs_raw = [v for name, v in enc if name.startswith("conv2d")]
    dense = [v for name, v in enc if name.startswith("dense")]
    proj = [v for name, v in _layer_vars(projection_h5) if name.startswith("dense")]
    if len(dense) != 1 or len(proj) != 1 or len(convs_raw) < 2:
        raise ValueError(f"{encoder_h5}: not an Audio2Vec encoder (convolutions, one dense layer)")
    convs = []
    for i, (k, b) in enumerate(convs_raw):
        convs.append(Conv(np.ascontiguousarray(k.reshape(-1, k.shape[3])), b, 2 if i < strided else 1))
    return Network(tuple(convs), tuple(dense[0]), tuple(proj[0]))


def network_from_onnx(path: Path) -> tuple[Network, str | None]:
    """The weights of an ``encoder.onnx`` written by :func:`.export.network_to_onnx` (its
    initializers ``conv{i}_kernel`` OIHW, ``conv{i}_bias``, ``bottleneck_*``, ``g_*``; the strides
    from its Conv nodes), and the model id it records. Needs the ``onnx`` package (the ``train`` extra)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    model_id = {p.key: p.value for p in model.metadata_props}.get("model_id")
    graph = model.graph
    inits = {t.name: np.asarray(numpy_helper.to_array(t), dtype=np.float32) for t in graph.initializer}
    strides = [int(a.ints[0]) for node in graph.node if node.op_type == "Conv" for a in node.attribute if a.name == "strides"]
    convs = []
    for i, stride in enumerate(strides):
        kernel = inits[f"conv{i}_kernel"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
        convs.append(Conv(np.ascontiguousarray(kernel.reshape(-1, kernel.shape[3])), inits[f"conv{i}_bias"], stride))
    return Network(tuple(convs), (inits["bottleneck_kernel"], inits["bottleneck_bias"]), (inits["g_kernel"], inits["g_bias"])), model_id


def _conv(x: np.ndarray, conv: Conv) -> np.ndarray:
    """3×3 convolution + bias + ReLU of ``x`` [n, h, w, c] (NHWC), TensorFlow's 'same' padding."""
    n, h, w, c = x.shape
    s = conv.stride
    oh, ow = -(-h // s), -(-w // s)
    pad_h, pad_w = max((oh - 1) * s + 3 - h, 0), max((ow - 1) * s + 3 - w, 0)
    xp = np.zeros((n, h + pad_h, w + pad_w, c), dtype=np.float32)
    xp[:, pad_h // 2 : pad_h // 2 + h, pad_w // 2 : pad_w // 2 + w] = x
    cols = np.empty((n, oh, ow, 9, c), dtype=np.float32)
    for dy in range(3):
        for dx in range(3):
            cols[:, :, :, dy * 3 + dx] = xp[:, dy : dy + s * (oh - 1) + 1 : s, dx : dx + s * (ow - 1) + 1 : s]
    y = cols.reshape(n * oh * ow, 9 * c) @ conv.kernel
    y += conv.bias
    np.maximum(y, 0.0, out=y)
    return y.reshape(n, oh, ow, -1)


def forward(net: Network, x: np.ndarray) -> np.ndarray:
    """Unit vectors of prepared windows.

    Parameters
    ----------
    net : Network
    x : np.ndarray [shape=(n, window_frames, n_mels)]
        Normalised log-mel windows (:func:`~search_engine.features.normalize_windows`).

    Returns
    -------
    z : np.ndarray [shape=(n, dim), dtype=float32], unit L2 norm
    """
    h = np.asarray(x, dtype=np.float32)[..., None]
    for conv in net.convs:
        h = _conv(h, conv)
    h = h.reshape(len(h), -1) @ net.dense[0] + net.dense[1]
    z = h @ net.project[0] + net.project[1]
    z /= np.sqrt(np.maximum(np.einsum("ij,ij->i", z, z), _EPSILON))[:, None]
    return z
