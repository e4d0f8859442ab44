"""The deployed int8 cost of a torch model: flash and RAM on the microcontroller, per layer.

    from tinyprune.cost import estimate
    c = estimate(model, (1, 40))            # input shape of one sample, PyTorch layout
    c.model_bytes    # the .tflite file (what `tinyprune convert` writes)
    c.flash_bytes    # model + tinyprune runtime code for the operators used
    c.arena_bytes    # the tinyprune runtime's arena for this model
    c.ram_bytes      # arena + runtime state + stack reserve
    c.layers         # per layer: params, MACs, weight/bias/quant bytes, activation bytes

The model is traced once and lowered to the TFLite graph the converter writes
(``tinyprune.costgraph``); this module prices that graph:

* **flash** = the flatbuffer (int8 weights, int32 biases, a float32 scale + int64 zero point per
  quantized channel, and the tables that describe tensors, operators and the model) + the
  runtime's code for the operators the model uses;
* **RAM** = the runtime's arena (4 bytes per tensor for locations + the peak of a greedy
  lifetime plan of the int8 activations: the largest set alive at once, placed the way
  ``firmware/runtime/tpr_planner.c`` places them, not the sum) + the runtime's state + a stack reserve.

Every byte constant lives in ``CostConstants`` with the reason for its value. Calibrate by
passing another ``CostConstants`` (``estimate(..., constants=...)``) or by editing the defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from torch import nn

from tinyprune.costgraph import ALIAS_OPS, Graph, inplace_candidates, lower


@dataclass(frozen=True)
class CostConstants:
    """Byte constants of the cost model, each with where its value comes from."""

    # ---- the .tflite flatbuffer ----
    # Least-squares fit over the TFLite converter's (TF 2.19) int8 output for the zoo's
    # architectures and the runtime tests' single-op models, after subtracting the parts counted
    # exactly below; tensor names re-measured on the models `tinyprune convert` writes (the zoo at
    # full and at random pruned widths: max error 3.3 % of the file, most within 0.5 %).
    model_fixed_bytes: int = 660  # file identifier, root table, subgraph, description, metadata
    # (min_runtime_version, CONVERSION_METADATA), signature_defs, buffer 0
    tensor_bytes: int = 50  # Tensor table + vtable + its buffer-vector entry
    # tensor names as tinyprune.lower's layers make them ("tfl.pseudo_qconst3", "model/conv_0/..."):
    # 33-46 characters on the zoo, + 4-byte length + NUL, padded to 4 bytes
    tensor_name_bytes: int = 44
    shape_dim_bytes: int = 4  # int32 per dimension in Tensor.shape
    quant_table_bytes: int = 41  # QuantizationParameters table + the scale and zero-point vector headers
    quant_channel_bytes: int = 12  # per quantized channel: float32 scale + int64 zero point (TFLite schema)
    operator_bytes: int = 15  # Operator table + builtin options table
    operator_io_bytes: int = 4  # int32 per operator input/output index
    opcode_bytes: int = 50  # OperatorCode table per distinct operator
    # int8 weights: 1 byte per element; int32 bias and shape constants: 4 (exact, from the schema).

    # ---- runtime code (tinyprune micro runtime, firmware/runtime) ----
    # arm-none-eabi-size of -Os cortex-m4 builds with only the operators a model uses
    # (runtime.op_defines), measured with no operator, each operator alone, and each group of
    # operators sharing code: the reader, planner, fixed-point and quantization code with no
    # operator; per operator what it adds beyond the code it shares (its kernel and the
    # dispatch), and per group what its members share. Each operator alone is priced exactly
    # (FULLY_CONNECTED 0.3 KB above, it shares the convolutions' validation); every operator
    # together 17,123 bytes against 16,873 measured.
    runtime_base_code_bytes: int = 6295
    # per operator, beyond code shared with others
    op_code_bytes: dict = field(default_factory=lambda: {
        "CONV_2D": 106, "DEPTHWISE_CONV_2D": 1792, "FULLY_CONNECTED": 596, "PAD": 24, "PADV2": 32,
        "RESHAPE": 20, "EXPAND_DIMS": 12, "SQUEEZE": 20, "MEAN": 538, "ADD": 416, "MUL": 286,
        "MAX_POOL_2D": 30, "AVERAGE_POOL_2D": 30, "SOFTMAX": 462, "CONCATENATION": 410, "LOGISTIC": 30,
        "TANH": 30, "HARD_SWISH": 390, "QUANTIZE": 310, "DEQUANTIZE": 126,
    })
    # code shared by several operators, counted once if any of them is used
    shared_code_bytes: dict = field(default_factory=lambda: {
        ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"): 3370,  # conv_common.c, the int8 dot products
        ("ADD", "MUL"): 258,  # broadcasting
        ("MAX_POOL_2D", "AVERAGE_POOL_2D"): 546,  # pool_common.c
        ("PAD", "PADV2"): 462,
        ("LOGISTIC", "TANH"): 206,
        ("RESHAPE", "EXPAND_DIMS", "SQUEEZE"): 164,  # the aliasing reshape
        # tpr_io: the shared checks of one or two inputs and an output (broadcast.c)
        ("LOGISTIC", "TANH", "HARD_SWISH", "SOFTMAX", "QUANTIZE", "DEQUANTIZE", "MEAN", "PAD", "PADV2",
         "MUL"): 162,
    })
    # an operator the runtime does not implement: priced like a mid-sized kernel, and reported
    unknown_op_code_bytes: int = 700
    # other cores need a little more or less code for the same C (every-operator builds, -Os:
    # cortex-m4 16873, m7 16883, m33 16885, m3 16023, m55 17203, m0/m0+ 17089 bytes)
    core_code_factor: dict = field(default_factory=lambda: {"cortex-m0": 1.013, "cortex-m0plus": 1.013,
                                                            "cortex-m55": 1.02, "cortex-m3": 0.95})

    # ---- RAM ----
    arena_location_bytes: int = 4  # the runtime keeps one uint32 offset per tensor at the arena's start
    arena_planner_scratch_bytes: int = 10  # per tensor, in the activation area while planning (tpr_runtime.c)
    arena_alignment: int = 4  # TPR_ARENA_ALIGN: every planned buffer is rounded up to it
    runtime_state_bytes: int = 104  # tpr_model_t without TPR_ERROR_DETAIL (25 words), caller-owned
    stack_reserve_bytes: int = 4096  # the stack the firmware links (tinyprune.firmware.DEFAULT_STACK_BYTES)

    # ---- TFLite Micro arena (for users who run the model with TFLM instead) ----
    # Rough (within about 600 bytes on the zoo): TFLM plans without aliasing RESHAPE, and keeps
    # per tensor a 12-byte TfLiteEvalTensor, per operator a TfLiteNode (about 36 bytes on 32-bit
    # cores), per output channel of a convolution or dense layer its multiplier and shift (fit:
    # 9 bytes), plus allocator state (fit: 1490 bytes). Fitted to tinyprune.tflm's 32-bit
    # estimates of the zoo's architectures.
    tflm_tensor_bytes: int = 12
    tflm_op_bytes: int = 36
    tflm_channel_bytes: int = 9
    tflm_fixed_bytes: int = 1490


DEFAULT_CONSTANTS = CostConstants()


@dataclass(frozen=True)
class LayerCost:
    """One torch layer's share of the deployed model."""

    name: str  # module path ("features.0.0"), or module path + function ("stacks.0.add")
    ops: tuple[str, ...]  # TFLite operators it becomes
    in_channels: int | None
    out_channels: int | None
    params: int  # deployed parameters: weights + biases (BatchNorm folded)
    macs: int
    weight_bytes: int  # int8 weights (and other int8 constants)
    bias_bytes: int  # int32 biases
    quant_bytes: int  # scales + zero points of its constant tensors
    flash_bytes: int  # all of the above + flatbuffer tables of its tensors and operators
    activation_bytes: int  # int8 output (after padding/reshapes of its own)
    live_bytes: int  # activations alive while it runs (the most over its operators)


@dataclass(frozen=True)
class CostEstimate:
    model_bytes: int  # the .tflite file
    runtime_code_bytes: int
    flash_bytes: int  # model_bytes + runtime_code_bytes
    arena_bytes: int  # tinyprune runtime arena
    activation_peak_bytes: int  # the memory plan's peak (part of arena_bytes)
    ram_bytes: int  # arena + runtime state + stack reserve
    tflm_arena_bytes: int  # rough TFLite Micro arena for the same model
    params: int
    param_bytes: int  # int8 weights + int32 biases (the part pruning shrinks directly)
    macs: int
    num_tensors: int
    num_operators: int
    op_names: tuple[str, ...]
    unsupported_ops: tuple[str, ...]  # operators the tinyprune runtime does not implement
    peak_layer: str  # the layer running when the most activation memory is alive
    largest_layer: str  # the layer with the most flash
    layers: tuple[LayerCost, ...]

    def layer(self, name: str) -> LayerCost:
        for lc in self.layers:
            if lc.name == name:
                return lc
        raise KeyError(name)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = [asdict(lc) for lc in self.layers]
        return d


def estimate(model: nn.Module, input_shape: tuple[int, ...], constants: CostConstants = DEFAULT_CONSTANTS,
             core: str | None = None) -> CostEstimate:
    """Estimate the deployed int8 cost of ``model`` for one sample of ``input_shape`` (no batch)."""
    return price(lower(model, tuple(input_shape)), constants, core)


# ---- pricing ----------------------------------------------------------------------------

def model_bytes(graph: Graph, k: CostConstants = DEFAULT_CONSTANTS) -> int:
    total = k.model_fixed_bytes + k.opcode_bytes * len({op.kind for op in graph.ops})
    for t in graph.tensors:
        total += _tensor_flash(t, k)
    for op in graph.ops:
        total += k.operator_bytes + k.operator_io_bytes * (len(op.inputs) + len(op.outputs))
    return total


def _tensor_flash(t, k: CostConstants) -> int:
    n = k.tensor_bytes + k.tensor_name_bytes + k.shape_dim_bytes * len(t.shape)
    if t.quantized:
        n += k.quant_table_bytes + k.quant_channel_bytes * t.quant_channels
    if t.const:
        n += t.nbytes
    return n


def runtime_code_bytes(op_names, k: CostConstants = DEFAULT_CONSTANTS, core: str | None = None) -> int:
    ops = set(op_names)
    total = k.runtime_base_code_bytes
    for op in ops:
        total += k.op_code_bytes.get(op, k.unknown_op_code_bytes)
    for members, size in k.shared_code_bytes.items():
        if ops & set(members):
            total += size
    return int(round(total * k.core_code_factor.get(core or "", 1.0)))


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


@dataclass(frozen=True)
class MemoryPlan:
    peak_bytes: int
    offsets: dict[int, int]  # tensor -> offset (aliases share their root's)
    live_bytes: tuple[int, ...]  # per operator: bytes of buffers alive while it runs
    lifetimes: dict[int, tuple[int, int]]  # root tensor -> (first op, last op)


def plan_memory(graph: Graph, k: CostConstants = DEFAULT_CONSTANTS, alias: bool = True) -> MemoryPlan:
    """Lifetimes as the runtime computes them (reshape aliases and in-place takeovers included),
    then its greedy-by-size placement (6 variants); as tpr_init, with a PAD's grown root and,
    if one could grow, without, keeping the smaller."""
    n_ops = len(graph.ops)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    size: dict[int, int] = {}
    root: dict[int, int] = {}
    candidates: dict[int, list[int]] = {}  # in-place output -> inputs it may take over
    for t in graph.inputs:
        first[t], last[t] = 0, 0
        size[t] = _align(graph.tensors[t].nbytes, k.arena_alignment)
    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            if graph.tensors[t].const:
                continue
            r = root.get(t, t)
            last[t] = i
            last[r] = max(last.get(r, i), i)
        for t in op.outputs:
            first[t], last[t] = i, i
            size[t] = _align(graph.tensors[t].nbytes, k.arena_alignment)
        if alias and len(op.outputs) == 1:
            out = graph.tensors[op.outputs[0]]
            ins = [(t, graph.tensors[t].numel, graph.tensors[t].nbytes, graph.tensors[t].const) for t in op.inputs]
            if takes := inplace_candidates(op.kind, ins, (out.numel, out.nbytes)):
                candidates[op.outputs[0]] = takes
        if alias and op.kind in ALIAS_OPS and op.inputs and not graph.tensors[op.inputs[0]].const:
            src = op.inputs[0]
            r = root.get(src, src)
            if size[r] == size[op.outputs[0]]:
                root[op.outputs[0]] = r
    for t in graph.outputs:
        last[t] = n_ops
        r = root.get(t, t)
        last[r] = max(last[r], n_ops)
    for t, r in root.items():
        last[r] = max(last[r], last[t])

    def take_over(grow: bool):
        """tpr_runtime.c's in-place takeovers, in tensor order: (roots, lifetimes, sizes, grew)."""
        tk_root, tk_last, tk_size, grew = dict(root), dict(last), dict(size), False
        for t in sorted(candidates):
            for a in candidates[t]:
                r = _root_of(tk_root, a)
                if tk_last[r] != first[t] or r == t:
                    continue
                if tk_size[t] > tk_size[r]:
                    grew = True
                    if not grow:
                        continue
                    tk_size[r] = tk_size[t]
                tk_last[r] = max(tk_last[r], tk_last[t])
                tk_root[t] = r
                break
        return tk_root, tk_last, tk_size, grew

    def placed(grow: bool) -> tuple[MemoryPlan, bool]:
        """The best of the planner's variants after the takeovers, and whether a root could grow."""
        tk_root, tk_last, tk_size, grew = take_over(grow)
        buffers = [t for t in first if t not in tk_root]
        best = None
        for mode in range(6 if alias else 4):  # (the TFLite Micro estimate: its planner's orders only)
            offsets, peak = _place(buffers, first, tk_last, tk_size, mode)
            if best is None or peak < best[1]:
                best = (offsets, peak)
        offsets, peak = best
        for t in tk_root:
            offsets[t] = offsets[_root_of(tk_root, t)]
        live = tuple(sum(tk_size[b] for b in buffers if first[b] <= i <= tk_last[b]) for i in range(n_ops))
        return MemoryPlan(peak, offsets, live, {b: (first[b], tk_last[b]) for b in buffers}), grew

    plan, grew = placed(True)
    if grew:
        without, _ = placed(False)
        if without.peak_bytes <= plan.peak_bytes:
            plan = without
    return plan


def _root_of(roots: dict[int, int], t: int) -> int:
    """The buffer whose memory t uses, along its chain of aliases (tpr_runtime.c's root_of)."""
    while t in roots:
        t = roots[t]
    return t


def _place(buffers, first, last, size, mode) -> tuple[dict[int, int], int]:
    """One variant of tpr_planner.c: mode bit 0 best fit, bit 1 longer lifetime first on ties,
    bit 2 in order of first use."""

    def key(b):
        return (first[b] if mode & 4 else 0, -size[b], -(last[b] - first[b]) if mode & 2 else 0, -b)

    placed: list[int] = []  # in offset order
    off: dict[int, int] = {}
    peak = 0
    for b in sorted(buffers, key=key):
        cur, chosen, best_waste = 0, None, None
        for o in placed:
            if first[o] > last[b] or first[b] > last[o]:
                continue
            if off[o] >= cur + size[b]:
                waste = off[o] - (cur + size[b])
                if (mode & 1 and (best_waste is None or waste < best_waste)) or (not mode & 1 and chosen is None):
                    best_waste, chosen = waste, cur
            cur = max(cur, off[o] + size[o])
        if chosen is None:
            chosen = cur
        off[b] = chosen
        peak = max(peak, chosen + size[b])
        i = 0
        while i < len(placed) and off[placed[i]] <= chosen:
            i += 1
        placed.insert(i, b)
    return off, peak


def arena_bytes(graph: Graph, plan: MemoryPlan, k: CostConstants = DEFAULT_CONSTANTS) -> int:
    n = len(graph.tensors)
    locs = _align(k.arena_location_bytes * n, k.arena_alignment)
    scratch = _align(k.arena_planner_scratch_bytes * n, k.arena_alignment)
    return locs + max(plan.peak_bytes, scratch)


def tflm_arena_bytes(graph: Graph, k: CostConstants = DEFAULT_CONSTANTS) -> int:
    plan = plan_memory(graph, k, alias=False)
    channels = sum(op.out_channels or 0 for op in graph.ops if op.weight is not None)
    return (plan.peak_bytes + k.tflm_tensor_bytes * len(graph.tensors) + k.tflm_op_bytes * len(graph.ops)
            + k.tflm_channel_bytes * channels + k.tflm_fixed_bytes)


def price(graph: Graph, k: CostConstants = DEFAULT_CONSTANTS, core: str | None = None) -> CostEstimate:
    """The CostEstimate of a lowered graph."""
    mbytes = model_bytes(graph, k)
    op_names = tuple(dict.fromkeys(op.kind for op in graph.ops))
    code = runtime_code_bytes(op_names, k, core)
    plan = plan_memory(graph, k)
    arena = arena_bytes(graph, plan, k)
    layers = _layers(graph, plan, k)
    peak_layer = graph.ops[max(range(len(graph.ops)), key=lambda i: plan.live_bytes[i])].layer if graph.ops else ""
    largest = max(layers, key=lambda lc: lc.flash_bytes).name if layers else ""
    return CostEstimate(
        model_bytes=mbytes,
        runtime_code_bytes=code,
        flash_bytes=mbytes + code,
        arena_bytes=arena,
        activation_peak_bytes=plan.peak_bytes,
        ram_bytes=arena + k.runtime_state_bytes + k.stack_reserve_bytes,
        tflm_arena_bytes=tflm_arena_bytes(graph, k),
        params=sum(lc.params for lc in layers),
        param_bytes=sum(t.nbytes for t in graph.tensors if t.const and t.role in ("weight", "bias")),
        macs=sum(lc.macs for lc in layers),
        num_tensors=len(graph.tensors),
        num_operators=len(graph.ops),
        op_names=op_names,
        unsupported_ops=tuple(n for n in op_names if n not in k.op_code_bytes),
        peak_layer=peak_layer,
        largest_layer=largest,
        layers=tuple(layers),
    )


def _layers(graph: Graph, plan: MemoryPlan, k: CostConstants) -> list[LayerCost]:
    by_layer: dict[str, list[int]] = {}
    for i, op in enumerate(graph.ops):
        by_layer.setdefault(op.layer, []).append(i)
    tensor_layer = {}
    for i, op in enumerate(graph.ops):  # a shared constant belongs to the first layer that reads it
        for t in op.inputs + op.outputs:
            tensor_layer.setdefault(t, op.layer)
    flash_of: dict[str, int] = {}
    for t in graph.tensors:
        name = tensor_layer.get(t.index, "input")
        flash_of[name] = flash_of.get(name, 0) + _tensor_flash(t, k)
    out = []
    for name, idxs in by_layer.items():
        ops = [graph.ops[i] for i in idxs]
        consts = {t for op in ops for t in op.inputs if graph.tensors[t].const and tensor_layer.get(t) == name}
        weights = sum(graph.tensors[t].nbytes for t in consts if graph.tensors[t].dtype == "int8")
        biases = sum(graph.tensors[t].nbytes for t in consts if graph.tensors[t].role == "bias")
        quant = sum(k.quant_table_bytes + k.quant_channel_bytes * graph.tensors[t].quant_channels
                    for t in consts if graph.tensors[t].quantized)
        params = sum(graph.tensors[t].numel for t in consts if graph.tensors[t].role in ("weight", "bias"))
        macs = sum(op.macs_per_output * graph.tensors[op.outputs[0]].numel for op in ops if op.outputs)
        flash = flash_of.get(name, 0) + sum(k.operator_bytes + k.operator_io_bytes * (len(op.inputs) + len(op.outputs))
                                            for op in ops)
        weighted = next((op for op in ops if op.weight is not None), None)
        last_out = ops[-1].outputs[0] if ops[-1].outputs else None
        out.append(LayerCost(
            name=name,
            ops=tuple(op.kind for op in ops),
            in_channels=weighted.in_channels if weighted else None,
            out_channels=weighted.out_channels if weighted else None,
            params=params,
            macs=macs,
            weight_bytes=weights,
            bias_bytes=biases,
            quant_bytes=quant,
            flash_bytes=flash,
            activation_bytes=graph.tensors[last_out].nbytes if last_out is not None else 0,
            live_bytes=max(plan.live_bytes[i] for i in idxs),
        ))
    return out
