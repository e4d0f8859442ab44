"""The lowering context: ONNX values by name (constants or activations), consumers, layer names
and layout changes."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace
from typing import Any

import numpy as np

from tinyprune.errors import BadInput
from tinyprune.lower.keras_layers import keras_ns
from tinyprune.lower.values import Act, memory_order


class _Names:
    """Unique Keras layer names derived from ONNX node names, deterministically."""

    def __init__(self):
        self.used = {"input"}

    def get(self, base: str) -> str:
        name = base
        k = 2
        while name in self.used:
            name = f"{base}_{k}"
            k += 1
        self.used.add(name)
        return name


def _node_base_name(node, index: int) -> str:
    """'/features/features.0/features.0.0/Conv' -> 'features.0.0_Conv'."""
    parts = [p for p in node.name.split("/") if p]
    parts = [p for i, p in enumerate(parts) if not (i + 1 < len(parts) and parts[i + 1].startswith(p))]
    base = re.sub(r"[^A-Za-z0-9_.\-]", "_", "_".join(parts)).strip("_.-")
    return base or f"{node.op_type.lower()}_{index}"


class Lowering:
    def __init__(self, model):
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
        self.nodes = list(self.graph.node)
        self.values: dict[str, Any] = {}
        self.skip: set[int] = set()  # nodes already absorbed into an earlier layer
        self.consumers: dict[str, list[int]] = defaultdict(list)
        for i, n in enumerate(self.nodes):
            for name in n.input:
                if name:
                    self.consumers[name].append(i)
        self.graph_outputs = {o.name for o in self.graph.output}
        self.names = _Names()
        self.node_names: dict[int, str] = {}
        self.index = 0  # the node being lowered
        self.static_batch: int | None = None  # the input's batch size when the graph fixes it

    # values
    def value(self, name: str, node) -> Any:
        if name not in self.values:
            raise BadInput(f"ONNX node '{node.name}' ({node.op_type}) reads '{name}', which no earlier node produces",
                           hint="the graph must be topologically sorted (onnx.checker.check_model)")
        return self.values[name]

    def act(self, node, k: int = 0) -> Act:
        v = self.value(node.input[k], node)
        if not isinstance(v, Act):
            raise BadInput(f"{node.op_type} node '{node.name}': expected an activation at input {k}, got a constant")
        return v

    def const(self, node, k: int, what: str = "") -> np.ndarray:
        v = self.value(node.input[k], node) if k < len(node.input) and node.input[k] else None
        if not isinstance(v, np.ndarray):
            raise BadInput(f"{node.op_type} node '{node.name}': {what or f'input {k}'} must be a constant")
        return v

    def opt_const(self, node, k: int) -> np.ndarray | None:
        if k >= len(node.input) or not node.input[k]:
            return None
        return self.const(node, k)

    def maybe_const(self, name: str) -> np.ndarray | None:
        v = self.values.get(name)
        return v if isinstance(v, np.ndarray) else None

    def set(self, name: str, value: Any) -> None:
        self.values[name] = value

    def alias(self, name: str, x: Act) -> None:
        """``name`` holds the same tensor; the Dense that wrote it may have other readers now."""
        self.values[name] = replace(x, dense=None)

    # names
    def name(self, node, suffix: str = "") -> str:
        base = self.node_names.get(self.index)
        if base is None:
            base = self.node_names[self.index] = self.names.get(_node_base_name(node, self.index))
        return self.names.get(base + suffix) if suffix else base

    def sole_consumer(self, name: str) -> tuple[int, Any] | None:
        """The one node reading ``name``, if exactly one does and it is not a graph output."""
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.graph_outputs:
            return None
        return users[0], self.nodes[users[0]]

    def data_readers(self, name: str) -> int:
        """How many nodes read the values of ``name`` (Shape reads only its static shape)."""
        return sum(self.nodes[i].op_type != "Shape" for i in self.consumers.get(name, []))

    # layouts
    def reshape(self, x: Act, shape: tuple[int, ...], perm: tuple[int, ...], node, order=None) -> Act:
        """The same bytes seen as torch ``shape`` in Keras layout ``perm``: a RESHAPE, or nothing."""
        target = tuple(shape[p] for p in perm)
        t = x.tensor
        if target != x.keras_shape:
            t = keras_ns().Reshape(target, name=self.name(node, "_reshape"))(t)
        return Act(t, tuple(shape), tuple(perm), order, x.nonneg)

    def as_layout(self, x: Act, perm: tuple[int, ...], node, why: str) -> Act:
        if x.perm == tuple(perm) and x.order is None:
            return x
        if np.array_equal(x.memory(), memory_order(x.shape, perm)):
            return self.reshape(x, x.shape, perm, node)
        raise BadInput(f"{node.op_type} node '{node.name}' needs its input {why}, which would take a TRANSPOSE "
                       f"(not executed by the tinyprune runtime)",
                       hint="keep tensors in the layout torch convolutions produce, or move the permute/flatten")


def node_attrs(node) -> dict[str, Any]:
    import onnx

    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def bad_node(node, message: str, hint: str | None = None) -> BadInput:
    return BadInput(f"{node.op_type} node '{node.name}': {message}", hint=hint)
