"""Lower a torch model to the int8 TFLite graph the converter will write, for the cost model.

One batch-1 forward pass is recorded: known leaf modules (Conv, Linear, BatchNorm, pooling,
activations, Flatten, ...) through forward hooks, everything else (``x + y``, ``torch.cat``,
``F.relu``, ``x.view``) through a ``TorchFunctionMode``. Each recorded call is lowered by a
handler in ``MODULE_HANDLERS`` / ``FUNCTION_HANDLERS`` into TFLite operators and tensors,
following what TFLite's converter does with the same network:

* BatchNorm after a convolution or dense layer is folded into it (an int32 bias appears);
  ReLU/ReLU6 after CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD or MUL is fused.
* A 1-D convolution or pooling becomes RESHAPE (expand dims) + the 2-D op + RESHAPE.
* Explicit zero padding that TF's SAME padding does not reproduce becomes a PAD operator.
* Flatten/view/reshape become RESHAPE, whose output shares its input's memory in the
  tinyprune runtime (an alias in the memory plan).
* Identical small constants (PAD paddings, MEAN axes) are stored once.

Shapes stay in PyTorch's order (only element counts and the quantized dimension matter).
Nothing here knows byte constants; ``tinyprune.cost`` prices the graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from tinyprune.errors import BadInput

# Operators whose fused activation absorbs a following ReLU/ReLU6 (TFLite's fused_activation_function).
FUSES_ACTIVATION = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL"}
# Operators the tinyprune runtime executes without a copy: output = input's memory.
ALIAS_OPS = {"RESHAPE", "EXPAND_DIMS", "SQUEEZE"}
# operators whose output may take over an input that dies there (tpr_ops.c's TPR_KFLAG_INPLACE:
# element-wise, an input of as many elements, each at least as wide; TPR_KFLAG_INPLACE_PAD)
INPLACE_OPS = {"ADD", "MUL", "LOGISTIC", "TANH", "HARD_SWISH", "QUANTIZE"}
INPLACE_PAD_OPS = {"PAD", "PADV2"}


def inplace_candidates(kind: str, inputs, output) -> list[int]:
    """The inputs (of the first two) an operator's only output may take over if they die there, as
    tpr_runtime.c notes them. ``inputs``: (index, elements, bytes, constant) per input;
    ``output``: (elements, bytes)."""
    if kind not in INPLACE_OPS | INPLACE_PAD_OPS:
        return []
    return [i for i, n, nbytes, const in inputs[:2]
            if not const and (kind in INPLACE_PAD_OPS or (n == output[0] and nbytes >= output[1]))]


@dataclass(frozen=True)
class GTensor:
    """One tensor of the TFLite graph."""

    index: int
    shape: tuple[int, ...]
    dtype: str  # "int8" or "int32"
    const: bool
    qdim: int | None = None  # per-channel quantized dimension, None: per-tensor (or none)
    quantized: bool = True  # False for int32 shape/axes constants
    layer: str = ""  # the torch layer this tensor belongs to
    role: str = "activation"  # activation, weight, bias, shape, input, output

    @property
    def numel(self) -> int:
        return math.prod(self.shape) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.numel * (4 if self.dtype == "int32" else 1)

    @property
    def quant_channels(self) -> int:
        if not self.quantized:
            return 0
        return self.shape[self.qdim] if self.qdim is not None else 1


@dataclass(frozen=True)
class GOp:
    """One TFLite operator, attributed to a torch layer."""

    kind: str  # TFLite builtin name
    layer: str  # module path, or module path + function name
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    weight: int | None = None  # tensor index of the weights (conv, dense)
    bias: int | None = None
    macs_per_output: int = 0  # multiply-accumulates per output element
    in_channels: int | None = None
    out_channels: int | None = None


@dataclass(frozen=True)
class Graph:
    tensors: tuple[GTensor, ...]
    ops: tuple[GOp, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    # every module whose output reaches a graph output without a weighted layer in between
    output_layers: tuple[str, ...] = ()

    def with_shapes(self, shapes: list[tuple[int, ...]]) -> "Graph":
        """The same graph with new tensor shapes (used to price other channel counts)."""
        tensors = tuple(replace(t, shape=tuple(int(d) for d in s)) for t, s in zip(self.tensors, shapes))
        ops = []
        for op in self.ops:
            if op.weight is not None:  # MACs and channel counts follow the weights' new shape
                w = tensors[op.weight].shape  # (out, in / groups, *kernel) or (out, in)
                dense = op.kind == "FULLY_CONNECTED"
                op = replace(op, macs_per_output=math.prod(w[1:]), out_channels=w[0],
                             in_channels=w[1] if dense else tensors[op.inputs[0]].shape[1])
            ops.append(op)
        return replace(self, tensors=tensors, ops=tuple(ops))

    def layer_ops(self) -> dict[str, list[GOp]]:
        out: dict[str, list[GOp]] = {}
        for op in self.ops:
            out.setdefault(op.layer, []).append(op)
        return out


# ---- recording ----------------------------------------------------------------------------

_LEAF_TYPES: tuple[type, ...] = (
    nn.Conv1d, nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d,
    nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Softmax,
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.Flatten, nn.Unflatten, nn.Dropout, nn.Identity, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d,
)


@dataclass
class _Call:
    name: str  # layer name
    target: Any  # a module, or the function's name
    args: tuple
    kwargs: dict
    output: Any


class _Recorder(TorchFunctionMode):
    def __init__(self, recorder: "_Trace"):
        super().__init__()
        self.rec = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.rec.on_function(func, args, kwargs, out)
        return out


class _Trace:
    def __init__(self, model: nn.Module):
        self.names = {m: n for n, m in model.named_modules()}
        self.stack: list[str] = []
        self.suppress = 0
        self.calls: list[_Call] = []
        self.activations: set[int] = set()
        self.keep: list[torch.Tensor] = []  # keeps recorded tensors alive so ids stay unique

    def _is_act(self, obj: Any) -> bool:
        return isinstance(obj, torch.Tensor) and id(obj) in self.activations

    def _mark(self, out: Any) -> None:
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor):
                self.activations.add(id(t))
                self.keep.append(t)

    def pre_hook(self, module, inputs):
        self.stack.append(self.names.get(module, type(module).__name__))
        if isinstance(module, _LEAF_TYPES):
            self.suppress += 1

    def post_hook(self, module, inputs, output):
        name = self.stack.pop()
        if isinstance(module, _LEAF_TYPES):
            self.suppress -= 1
            if self.suppress == 0 and any(self._is_act(x) for x in inputs):
                self.calls.append(_Call(name, module, tuple(inputs), {}, output))
                self._mark(output)

    def on_function(self, func, args, kwargs, out) -> None:
        if self.suppress:
            return
        if not isinstance(out, torch.Tensor) and not (
                isinstance(out, (tuple, list)) and out and all(isinstance(t, torch.Tensor) for t in out)):
            return
        flat = list(args) + list(kwargs.values())
        flat += [x for a in args if isinstance(a, (list, tuple)) for x in a]
        if not any(self._is_act(a) for a in flat):
            return
        fname = getattr(func, "__name__", str(func)).strip("_")
        if fname in ("dim", "size", "numel", "get", "shape"):
            return
        layer = (self.stack[-1] + "." if self.stack and self.stack[-1] else "") + fname
        self.calls.append(_Call(layer, fname, tuple(args), dict(kwargs), out))
        self._mark(out)


def record(model: nn.Module, example: torch.Tensor) -> tuple[list[_Call], torch.Tensor]:
    trace = _Trace(model)
    trace.activations.add(id(example))
    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(trace.pre_hook))
        handles.append(m.register_forward_hook(trace.post_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _Recorder(trace):
            out = model(example)
    except Exception as exc:
        raise BadInput(
            f"the model failed on an input of shape {tuple(example.shape)}: {type(exc).__name__}: {exc}",
            hint="check --model and the dataset's input shape",
        ) from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise BadInput(f"the model returned a {type(out).__name__}; tinyprune needs a single output tensor")
    return trace.calls, out


# ---- lowering ----------------------------------------------------------------------------

class _Builder:
    def __init__(self):
        self.tensors: list[GTensor] = []
        self.ops: list[GOp] = []
        self.of: dict[int, int] = {}  # id(torch tensor) -> graph tensor
        self.producer: dict[int, int] = {}  # graph tensor -> op index
        self.fused: set[int] = set()  # ops whose activation slot is taken
        self.shared: dict[Any, int] = {}  # deduplicated constants
        self.layer_of_tensor: dict[int, str] = {}

    def tensor(self, shape, dtype="int8", const=False, qdim=None, quantized=True, layer="", role="activation") -> int:
        idx = len(self.tensors)
        self.tensors.append(GTensor(idx, tuple(int(d) for d in shape), dtype, const, qdim, quantized, layer, role))
        return idx

    def shape_const(self, values, layer: str, key=None) -> int:
        if key is not None and key in self.shared:
            return self.shared[key]
        idx = self.tensor((len(values),) if not isinstance(values[0], (tuple, list)) else (len(values), len(values[0])),
                          dtype="int32", const=True, quantized=False, layer=layer, role="shape")
        if key is not None:
            self.shared[key] = idx
        return idx

    def op(self, kind, layer, inputs, outputs, **kw) -> int:
        self.ops.append(GOp(kind, layer, tuple(inputs), tuple(outputs), **kw))
        for o in outputs:
            self.producer[o] = len(self.ops) - 1
        return len(self.ops) - 1

    def act_in(self, t: torch.Tensor) -> int:
        if id(t) not in self.of:
            raise KeyError
        return self.of[id(t)]

    def bind(self, torch_out: torch.Tensor, idx: int) -> None:
        self.of[id(torch_out)] = idx

    def new_act(self, torch_out: torch.Tensor, layer: str) -> int:
        idx = self.tensor(tuple(torch_out.shape), layer=layer)
        self.bind(torch_out, idx)
        return idx

    def producer_kind(self, idx: int) -> str | None:
        p = self.producer.get(idx)
        return self.ops[p].kind if p is not None else None


def _pair(v, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _same_padding(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _read_pads(size: int, k: int, s: int, d: int, p: int) -> tuple[int, int]:
    """The (begin, end) zero rows a window actually reads with torch's symmetric padding ``p``:
    the lowering pads only those (e.g. (1, 0) for a stride-2, kernel-3, padding-1 convolution
    of an even length)."""
    ek = (k - 1) * d + 1
    out = (size + 2 * p - ek) // s + 1
    return p, max((out - 1) * s + ek - size - p, 0)


def _padding_mode(in_sizes, kernel, stride, dilation, padding) -> tuple[str, tuple[tuple[int, int], ...]]:
    """VALID, SAME, or PAD (an explicit PAD operator is needed), and the pads read per axis."""
    if isinstance(padding, str):
        if padding == "valid":
            return "VALID", tuple((0, 0) for _ in in_sizes)
        return "SAME", tuple(_same_padding(n, k, s, d) for n, k, s, d in zip(in_sizes, kernel, stride, dilation))
    pads = _pair(padding, len(in_sizes))
    eff = tuple(_read_pads(n, k, s, d, p) for n, k, s, d, p in zip(in_sizes, kernel, stride, dilation, pads))
    if all(e == (0, 0) for e in eff):
        return "VALID", eff
    if all(e == _same_padding(n, k, s, d) for e, n, k, s, d in zip(eff, in_sizes, kernel, stride, dilation)):
        return "SAME", eff
    return "PAD", eff


def _lower_conv(b: _Builder, call: _Call, module: nn.Module) -> None:
    x = call.args[0]
    xi = b.act_in(x)
    nd = x.dim() - 2
    k = _pair(module.kernel_size, nd)
    s = _pair(module.stride, nd)
    d = _pair(module.dilation, nd)
    mode, eff = _padding_mode(tuple(x.shape[2:]), k, s, d, module.padding)
    if mode == "PAD" or getattr(module, "padding_mode", "zeros") != "zeros":
        pads = _pair(module.padding, nd)
        padded = tuple(x.shape[:2]) + tuple(n + b + e for n, (b, e) in zip(x.shape[2:], eff))
        key = ("pad", x.dim(), pads)
        pc = b.shape_const([(0, 0)] * x.dim(), call.name, key=key)
        pi = b.tensor(padded, layer=call.name)
        b.op("PAD", call.name, [xi, pc], [pi])
        xi = pi
    if nd == 1:  # EXPAND_DIMS: (N, C, L) -> (N, C, 1, L)
        shape = b.tensors[xi].shape
        sc = b.shape_const([0] * 4, call.name)
        ei = b.tensor(shape[:2] + (1,) + shape[2:], layer=call.name)
        b.op("RESHAPE", call.name, [xi, sc], [ei])
        xi = ei
    cout, cin_g = module.weight.shape[0], module.weight.shape[1]
    depthwise = module.groups == module.in_channels and module.groups > 1 and cin_g == 1
    wi = b.tensor(tuple(module.weight.shape), const=True, qdim=0, layer=call.name, role="weight")
    bi = b.tensor((cout,), dtype="int32", const=True, qdim=0, layer=call.name, role="bias") if module.bias is not None else None
    out = call.output
    out_shape = tuple(out.shape)
    oi = b.tensor(out_shape[:2] + (1,) + out_shape[2:] if nd == 1 else out_shape, layer=call.name)
    kind = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    b.op(kind, call.name, [xi, wi] + ([bi] if bi is not None else []), [oi], weight=wi, bias=bi,
         macs_per_output=math.prod(k) * cin_g, in_channels=module.in_channels, out_channels=cout)
    if nd == 1:  # RESHAPE back: (N, C, 1, L) -> (N, C, L)
        sc = b.shape_const([0] * 3, call.name)
        ri = b.tensor(out_shape, layer=call.name)
        b.op("RESHAPE", call.name, [oi, sc], [ri])
        b.bind(out, ri)
    else:
        b.bind(out, oi)


def _lower_linear(b: _Builder, call: _Call, module: nn.Module) -> None:
    x = call.args[0]
    xi = b.act_in(x)
    wi = b.tensor(tuple(module.weight.shape), const=True, qdim=0, layer=call.name, role="weight")
    bi = (b.tensor((module.out_features,), dtype="int32", const=True, qdim=0, layer=call.name, role="bias")
          if module.bias is not None else None)
    oi = b.new_act(call.output, call.name)
    b.op("FULLY_CONNECTED", call.name, [xi, wi] + ([bi] if bi is not None else []), [oi], weight=wi, bias=bi,
         macs_per_output=module.in_features, in_channels=module.in_features, out_channels=module.out_features)


def _attach_bias(b: _Builder, op_index: int, channels: int, layer: str) -> None:
    """BatchNorm folded into a bias-less convolution gives it an int32 bias."""
    op = b.ops[op_index]
    if op.bias is not None:
        return
    bi = b.tensor((channels,), dtype="int32", const=True, qdim=0, layer=op.layer, role="bias")
    b.ops[op_index] = replace(op, inputs=op.inputs + (bi,), bias=bi)


def _lower_batchnorm(b: _Builder, call: _Call, channels: int) -> None:
    x = call.args[0]
    xi = b.act_in(x)
    p = b.producer.get(xi)
    if p is not None and b.ops[p].kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and p not in b.fused:
        _attach_bias(b, p, channels, call.name)
        b.bind(call.output, xi)  # folded: same tensor
        # a 1-D conv's BN folds through the trailing RESHAPE too
        return
    if p is not None and b.ops[p].kind == "RESHAPE":
        q = b.producer.get(b.ops[p].inputs[0])
        if q is not None and b.ops[q].kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and q not in b.fused:
            _attach_bias(b, q, channels, call.name)
            b.bind(call.output, xi)
            return
    # a BatchNorm on its own: MUL by a per-channel scale, ADD a per-channel offset
    shape = tuple(x.shape)
    cshape = (channels,) + (1,) * (len(shape) - 2)
    mc = b.tensor(cshape, const=True, layer=call.name, role="weight")
    mi = b.tensor(shape, layer=call.name)
    b.op("MUL", call.name, [xi, mc], [mi])
    ac = b.tensor(cshape, const=True, layer=call.name, role="weight")
    oi = b.new_act(call.output, call.name)
    b.op("ADD", call.name, [mi, ac], [oi])


def _lower_activation(b: _Builder, call: _Call, kind: str) -> None:
    x = call.args[0]
    xi = b.act_in(x)
    p = b.producer.get(xi)
    root = p
    # look through a 1-D conv's trailing RESHAPE
    if p is not None and b.ops[p].kind == "RESHAPE":
        q = b.producer.get(b.ops[p].inputs[0])
        if q is not None and b.ops[q].kind in FUSES_ACTIVATION:
            root = q
    if kind in ("RELU", "RELU6") and root is not None and b.ops[root].kind in FUSES_ACTIVATION and root not in b.fused:
        b.fused.add(root)
        b.bind(call.output, xi)
        return
    oi = b.new_act(call.output, call.name)
    b.op(kind, call.name, [xi], [oi])


def _lower_alias(b: _Builder, call: _Call) -> None:
    b.bind(call.output, b.act_in(call.args[0]))


def _lower_reshape(b: _Builder, call: _Call) -> None:
    x = call.args[0]
    xi = b.act_in(x)
    if tuple(x.shape) == tuple(call.output.shape):
        b.bind(call.output, xi)
        return
    sc = b.shape_const([0] * call.output.dim(), call.name)
    oi = b.new_act(call.output, call.name)
    b.op("RESHAPE", call.name, [xi, sc], [oi])


def _lower_pool(b: _Builder, call: _Call, kind: str) -> None:
    x = call.args[0]
    xi = b.act_in(x)
    if x.dim() == 3:  # 1-D pooling: RESHAPE + 2-D pool + RESHAPE
        sc = b.shape_const([0] * 4, call.name)
        ei = b.tensor(tuple(x.shape[:2]) + (1, x.shape[2]), layer=call.name)
        b.op("RESHAPE", call.name, [xi, sc], [ei])
        out = call.output
        pi = b.tensor(tuple(out.shape[:2]) + (1, out.shape[2]), layer=call.name)
        b.op(kind, call.name, [ei], [pi])
        sc2 = b.shape_const([0] * 3, call.name)
        oi = b.new_act(out, call.name)
        b.op("RESHAPE", call.name, [pi, sc2], [oi])
        return
    oi = b.new_act(call.output, call.name)
    b.op(kind, call.name, [xi], [oi])


def _lower_mean(b: _Builder, call: _Call) -> None:
    x = call.args[0]
    xi = b.act_in(x)
    axes = tuple(range(2, x.dim()))
    ac = b.shape_const([0] * len(axes), call.name, key=("axes", axes))
    oi = b.new_act(call.output, call.name)
    b.op("MEAN", call.name, [xi, ac], [oi])


def _lower_adaptive(b: _Builder, call: _Call, output_size) -> None:
    sizes = _pair(output_size, call.args[0].dim() - 2)
    if all(s == 1 for s in sizes):
        _lower_mean(b, call)
    else:
        _lower_pool(b, call, "AVERAGE_POOL_2D")


def _lower_pad(b: _Builder, call: _Call) -> None:
    x = call.args[0]
    xi = b.act_in(x)
    pads = call.kwargs.get("pad", call.args[1] if len(call.args) > 1 else getattr(call.target, "padding", None))
    pc = b.shape_const([(0, 0)] * x.dim(), call.name, key=("pad", x.dim(), tuple(pads) if isinstance(pads, (list, tuple)) else pads))
    oi = b.new_act(call.output, call.name)
    b.op("PAD", call.name, [xi, pc], [oi])


def _binary(b: _Builder, call: _Call, kind: str) -> None:
    ins = []
    for a in call.args[:2]:
        if isinstance(a, torch.Tensor) and id(a) in b.of:
            ins.append(b.of[id(a)])
        elif isinstance(a, torch.Tensor):
            ins.append(b.tensor(tuple(a.shape), const=True, layer=call.name, role="weight"))
        else:  # a Python number: a one-element constant
            ins.append(b.tensor((1,), const=True, layer=call.name, role="weight"))
    oi = b.new_act(call.output, call.name)
    b.op(kind, call.name, ins, [oi])


def _lower_cat(b: _Builder, call: _Call) -> None:
    parts = call.args[0] if call.args else call.kwargs.get("tensors", ())
    ins = [b.act_in(t) if id(t) in b.of else b.tensor(tuple(t.shape), const=True, layer=call.name) for t in parts]
    oi = b.new_act(call.output, call.name)
    b.op("CONCATENATION", call.name, ins, [oi])


def _lower_generic(b: _Builder, call: _Call, kind: str | None = None) -> None:
    """Anything else: one operator reading the activations it was given and writing its output."""
    ins = [b.of[id(a)] for a in call.args if isinstance(a, torch.Tensor) and id(a) in b.of]
    out = call.output
    if isinstance(out, (tuple, list)):
        outs = [b.new_act(t, call.name) for t in out if isinstance(t, torch.Tensor)]
    else:
        outs = [b.new_act(out, call.name)]
    name = kind or str(call.target).upper()
    b.op(name, call.name, ins, outs)


def _hardtanh_kind(m: nn.Hardtanh) -> str:
    return "RELU6" if (m.min_val, m.max_val) == (0.0, 6.0) else "RELU_N1_TO_1" if (m.min_val, m.max_val) == (-1.0, 1.0) else "MINIMUM"


# handlers keyed by module class; each takes (builder, call, module)
MODULE_HANDLERS: dict[type, Callable[[_Builder, _Call, nn.Module], None]] = {
    nn.Conv1d: _lower_conv,
    nn.Conv2d: _lower_conv,
    nn.Linear: _lower_linear,
    nn.BatchNorm1d: lambda b, c, m: _lower_batchnorm(b, c, m.num_features),
    nn.BatchNorm2d: lambda b, c, m: _lower_batchnorm(b, c, m.num_features),
    nn.ReLU: lambda b, c, m: _lower_activation(b, c, "RELU"),
    nn.ReLU6: lambda b, c, m: _lower_activation(b, c, "RELU6"),
    nn.Hardtanh: lambda b, c, m: _lower_activation(b, c, _hardtanh_kind(m)),
    nn.LeakyReLU: lambda b, c, m: _lower_activation(b, c, "LEAKY_RELU"),
    nn.Sigmoid: lambda b, c, m: _lower_activation(b, c, "LOGISTIC"),
    nn.Tanh: lambda b, c, m: _lower_activation(b, c, "TANH"),
    nn.Hardswish: lambda b, c, m: _lower_activation(b, c, "HARD_SWISH"),
    nn.Softmax: lambda b, c, m: _lower_activation(b, c, "SOFTMAX"),
    nn.MaxPool1d: lambda b, c, m: _lower_pool(b, c, "MAX_POOL_2D"),
    nn.MaxPool2d: lambda b, c, m: _lower_pool(b, c, "MAX_POOL_2D"),
    nn.AvgPool1d: lambda b, c, m: _lower_pool(b, c, "AVERAGE_POOL_2D"),
    nn.AvgPool2d: lambda b, c, m: _lower_pool(b, c, "AVERAGE_POOL_2D"),
    nn.AdaptiveAvgPool1d: lambda b, c, m: _lower_adaptive(b, c, m.output_size),
    nn.AdaptiveAvgPool2d: lambda b, c, m: _lower_adaptive(b, c, m.output_size),
    nn.Flatten: lambda b, c, m: _lower_reshape(b, c),
    nn.Unflatten: lambda b, c, m: _lower_reshape(b, c),
    nn.Dropout: lambda b, c, m: _lower_alias(b, c),
    nn.Identity: lambda b, c, m: _lower_alias(b, c),
    nn.ZeroPad2d: lambda b, c, m: _lower_pad(b, c),
    nn.ConstantPad1d: lambda b, c, m: _lower_pad(b, c),
    nn.ConstantPad2d: lambda b, c, m: _lower_pad(b, c),
}

# handlers keyed by function / Tensor method name (leading and trailing underscores removed)
FUNCTION_HANDLERS: dict[str, Callable[[_Builder, _Call], None]] = {
    **{n: (lambda b, c: _binary(b, c, "ADD")) for n in ("add", "iadd", "radd")},
    **{n: (lambda b, c: _binary(b, c, "SUB")) for n in ("sub", "isub", "rsub")},
    **{n: (lambda b, c: _binary(b, c, "MUL")) for n in ("mul", "imul", "rmul")},
    **{n: _lower_cat for n in ("cat", "concat", "concatenate")},
    **{n: _lower_reshape for n in ("flatten", "view", "reshape", "squeeze", "unsqueeze")},
    **{n: _lower_alias for n in ("contiguous", "dropout", "clone", "detach")},
    **{n: (lambda b, c: _lower_activation(b, c, "RELU")) for n in ("relu",)},
    "relu6": lambda b, c: _lower_activation(b, c, "RELU6"),
    "hardtanh": lambda b, c: _lower_activation(b, c, "RELU6"),
    "sigmoid": lambda b, c: _lower_activation(b, c, "LOGISTIC"),
    "tanh": lambda b, c: _lower_activation(b, c, "TANH"),
    "hardswish": lambda b, c: _lower_activation(b, c, "HARD_SWISH"),
    "softmax": lambda b, c: _lower_activation(b, c, "SOFTMAX"),
    "max_pool1d": lambda b, c: _lower_pool(b, c, "MAX_POOL_2D"),
    "max_pool2d": lambda b, c: _lower_pool(b, c, "MAX_POOL_2D"),
    "avg_pool1d": lambda b, c: _lower_pool(b, c, "AVERAGE_POOL_2D"),
    "avg_pool2d": lambda b, c: _lower_pool(b, c, "AVERAGE_POOL_2D"),
    "adaptive_avg_pool1d": lambda b, c: _lower_adaptive(b, c, c.args[1] if len(c.args) > 1 else c.kwargs["output_size"]),
    "adaptive_avg_pool2d": lambda b, c: _lower_adaptive(b, c, c.args[1] if len(c.args) > 1 else c.kwargs["output_size"]),
    "mean": _lower_mean,
    "pad": _lower_pad,
    "permute": lambda b, c: _lower_generic(b, c, "TRANSPOSE"),
    "transpose": lambda b, c: _lower_generic(b, c, "TRANSPOSE"),
    "getitem": lambda b, c: _lower_generic(b, c, "STRIDED_SLICE"),
}


def lower(model: nn.Module, input_shape: tuple[int, ...]) -> Graph:
    """Trace ``model`` on one zero sample of ``input_shape`` and lower it to a TFLite-like graph."""
    example = torch.zeros(1, *input_shape)
    calls, out = record(model, example)
    b = _Builder()
    gin = b.tensor(tuple(example.shape), layer="input", role="input")
    b.bind(example, gin)
    for call in calls:
        try:
            if isinstance(call.target, nn.Module):
                handler = next((h for t, h in MODULE_HANDLERS.items() if type(call.target) is t), None)
                if handler is None:
                    handler = next(h for t, h in MODULE_HANDLERS.items() if isinstance(call.target, t))
                handler(b, call, call.target)
            else:
                FUNCTION_HANDLERS.get(call.target, lambda bb, cc: _lower_generic(bb, cc))(b, call)
        except KeyError:
            # an op on a tensor we did not see produced (e.g. a constant made inside forward)
            continue
    if id(out) not in b.of:
        raise BadInput("could not follow the model's data flow from its input to its output",
                       hint="the cost model traces forward(); make the output depend on the input through tensor ops")
    gout = b.of[id(out)]
    if gout == gin:
        raise BadInput("the model's output is its input; there is nothing to deploy")
    tensors = list(b.tensors)
    tensors[gout] = replace(tensors[gout], role="output")
    return Graph(tuple(tensors), tuple(b.ops), (gin,), (gout,), tuple(_output_layers(b, gout)))


def _output_layers(b: _Builder, gout: int) -> list[str]:
    """Layers that write the graph output: walking back through ops without weights."""
    layers: list[str] = []
    todo, seen = [gout], set()
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        p = b.producer.get(t)
        if p is None:
            continue
        op = b.ops[p]
        if op.weight is not None:
            layers.append(op.layer)
            continue
        todo.extend(i for i in op.inputs if not b.tensors[i].const)
    return layers
