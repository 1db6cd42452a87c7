"""Tiny stand-ins for insightface's antelopev2 ONNX files, for the tiny Hallo folder (testing only).

The ``onnx`` package is not a dependency (nor is torch's exporter, which needs it), so the
few protobuf messages an ONNX model needs are encoded here by hand; onnxruntime reads them.
Both files have the real ones' interface:

- ``scrfd_10g_bnkps.onnx``: input ``input.1`` ``[1, 3, H, W]`` (H, W free, multiples of 32)
  normalised as insightface does ((x - 127.5) / 128); nine outputs, scores then box distances
  then keypoint offsets for strides 8, 16, 32, two anchors per cell, ``(cells * 2, 1|4|10)``,
  distances in stride units. This detector "sees a face" in every 32-pixel cell whose mean
  is bright (> 0.5 after normalisation: score ``sigmoid(20 * mean - 10)``), as a 64-pixel box
  with five keypoints in a face-like pattern; strides 8 and 16 never fire.
- ``glintr100.onnx``: input ``input.1`` ``[N, 3, 112, 112]``, output ``[N, 512]``: a seeded
  random linear map of the 14-pixel average-pooled crop (an ArcFace-shaped noise embedding).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

OPSET = 13
IR_VERSION = 7
STRIDES = (8, 16, 32)
ANCHORS = 2
# Five keypoints (eyes, nose, mouth corners) as offsets from the anchor centre, in stride units.
KEYPOINTS = (-0.35, -0.25, 0.35, -0.25, 0.0, 0.1, -0.3, 0.45, 0.3, 0.45)
BOX = 1.0  # each side's distance from the anchor centre, in stride units
EMBEDDING = 512

# ---------------------------------------------------------------- protobuf wire format


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64: two's complement, ten bytes
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _float(field: int, value: float) -> bytes:
    return _varint(field << 3 | 5) + struct.pack("<f", value)


# ---------------------------------------------------------------- ONNX messages (onnx.proto field numbers)

_FLOAT, _INT64 = 1, 7  # TensorProto.DataType
_ATTR_FLOAT, _ATTR_INT, _ATTR_INTS = 1, 2, 7  # AttributeProto.AttributeType


def _tensor(name: str, array: np.ndarray) -> bytes:
    kind = _INT64 if array.dtype == np.int64 else _FLOAT
    data = np.ascontiguousarray(array, dtype="<i8" if kind == _INT64 else "<f4").tobytes()
    return b"".join(_int(1, d) for d in array.shape) + _int(2, kind) + _bytes(8, name) + _bytes(9, data)


def _attribute(name: str, value: int | float | tuple[int, ...]) -> bytes:
    if isinstance(value, tuple):
        return _bytes(1, name) + b"".join(_int(8, v) for v in value) + _int(20, _ATTR_INTS)
    if isinstance(value, float):
        return _bytes(1, name) + _float(2, value) + _int(20, _ATTR_FLOAT)
    return _bytes(1, name) + _int(3, value) + _int(20, _ATTR_INT)


def _node(op: str, inputs: list[str], outputs: list[str], **attributes: int | float | tuple[int, ...]) -> bytes:
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
            + _bytes(3, outputs[0]) + _bytes(4, op)
            + b"".join(_bytes(5, _attribute(k, v)) for k, v in attributes.items()))


def _value_info(name: str, shape: tuple[int | str, ...]) -> bytes:
    dims = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in shape)
    tensor_type = _int(1, _FLOAT) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def _model(name: str, nodes: list[bytes], initializers: dict[str, np.ndarray],
           inputs: dict[str, tuple[int | str, ...]], outputs: dict[str, tuple[int | str, ...]]) -> bytes:
    graph = (b"".join(_bytes(1, n) for n in nodes) + _bytes(2, name)
             + b"".join(_bytes(5, _tensor(k, v)) for k, v in initializers.items())
             + b"".join(_bytes(11, _value_info(k, v)) for k, v in inputs.items())
             + b"".join(_bytes(12, _value_info(k, v)) for k, v in outputs.items()))
    return (_int(1, IR_VERSION) + _bytes(2, "genhuman-tiny") + _bytes(7, graph)
            + _bytes(8, _bytes(1, "") + _int(2, OPSET)))


# ---------------------------------------------------------------- the two networks


def _head(stride: int, kind: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Conv weight and bias of one output head: one value vector per anchor and cell."""
    weight = np.zeros((ANCHORS * width, 3, stride, stride), np.float32)
    if kind == "score":
        bright = stride == STRIDES[-1]
        weight[:] = 20.0 / (3 * stride * stride) if bright else 0.0  # 20 * the cell's mean
        return weight, np.full(ANCHORS, -10.0 if bright else -30.0, np.float32)
    per_anchor = np.full(4, BOX, np.float32) if kind == "bbox" else np.array(KEYPOINTS, np.float32)
    return weight, np.tile(per_anchor, ANCHORS)


def tiny_face_detector() -> bytes:
    """An SCRFD-shaped detector (see the module docstring)."""
    nodes: list[bytes] = []
    weights: dict[str, np.ndarray] = {}
    outputs: dict[str, tuple[int | str, ...]] = {}
    for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
        for stride in STRIDES:
            name = f"{kind}_{stride}"
            weights[f"{name}.weight"], weights[f"{name}.bias"] = _head(stride, kind, width)
            weights[f"{name}.shape"] = np.array([-1, width], np.int64)
            conv = f"{name}.conv"
            nodes.append(_node("Conv", ["input.1", f"{name}.weight", f"{name}.bias"], [conv],
                               kernel_shape=(stride, stride), strides=(stride, stride)))
            if kind == "score":
                nodes.append(_node("Sigmoid", [conv], [f"{name}.sigmoid"]))
                conv = f"{name}.sigmoid"
            nodes.append(_node("Transpose", [conv], [f"{name}.nhwc"], perm=(0, 2, 3, 1)))
            nodes.append(_node("Reshape", [f"{name}.nhwc", f"{name}.shape"], [name]))
            outputs[name] = (f"{name}_anchors", width)
    return _model("scrfd_tiny", nodes, weights, {"input.1": (1, 3, "height", "width")}, outputs)


def tiny_face_recognizer(seed: int = 0) -> bytes:
    """An ArcFace-shaped embedding network (see the module docstring)."""
    rng = np.random.default_rng(seed)
    weights = {"fc.weight": (rng.standard_normal((3 * 8 * 8, EMBEDDING)) * 0.5).astype(np.float32),
               "fc.bias": np.zeros(EMBEDDING, np.float32)}
    nodes = [_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=(14, 14), strides=(14, 14)),
             _node("Flatten", ["pooled"], ["flat"], axis=1),
             _node("Gemm", ["flat", "fc.weight", "fc.bias"], ["embedding"])]
    return _model("arcface_tiny", nodes, weights, {"input.1": ("batch", 3, 112, 112)},
                  {"embedding": ("batch", EMBEDDING)})


def save_tiny_face_analysis(root: str | Path, detector: str, recognizer: str, seed: int = 0) -> None:
    """Write both files at ``root/detector`` and ``root/recognizer`` (the layout's relative paths)."""
    root = Path(root)
    for name, model in ((detector, tiny_face_detector()), (recognizer, tiny_face_recognizer(seed))):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(model)
