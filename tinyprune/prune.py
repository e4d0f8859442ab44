"""Budget-driven structured pruning: remove whole channels until the int8 model fits.

    from tinyprune.prune import Budget, PruneConfig, prune_to_budget
    result = prune_to_budget(model, (1, 40), data, Budget(64 * 1024, 16 * 1024), PruneConfig())
    result.model      # a dense torch model with fewer channels
    result.steps      # every step: params, estimated flash/RAM, validation accuracy

The pieces, each usable alone:

* ``find_groups``: torch-pruning's DependencyGraph splits the model into groups of coupled
  channels (a convolution's outputs, its BatchNorm, the next layers' inputs, residual partners,
  depthwise partners). Layers that write the model's output are never pruned, and nothing
  touches the model's input channels (groups coupled to them are found by a probe and left out).
* ``ChannelCostModel``: the cost model (``tinyprune.cost``) as a function of the channel count
  of every group, so that a search can price thousands of candidate widths without surgery.
  It probes the lowered graph once per group (one channel removed on a copy) and, since every
  tensor dimension is affine in channel counts, rebuilds exact shapes for any widths.
* ``check_budget``: the smallest model reachable (every group at its minimum channels) against
  the budget; raises ``BudgetError`` before any long work when even that does not fit.
* ``apply_channels``: the surgery, by torch-pruning (``Group.prune``), removing the lowest-scored
  channels of each group.
* ``prune_to_budget``: the search (``tinyprune.search``) with fine-tuning between steps.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from tinyprune import cost as costmod
from tinyprune.costgraph import Graph, lower
from tinyprune.errors import BadInput, BudgetError
from tinyprune.sizes import format_size

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)
SCHEDULES = ("iterative", "oneshot", "uniform")


@dataclass(frozen=True)
class Budget:
    """What the pruned model must fit: flash for model + runtime code, RAM for arena + runtime
    state + stack reserve (``CostEstimate.flash_bytes`` / ``ram_bytes``). ``param_bytes``
    optionally caps the int8 weights + int32 biases alone (``CostEstimate.param_bytes``), for
    ShrinkBench-style compression ratios."""

    flash_bytes: int
    ram_bytes: int
    source: str = "--flash/--ram"
    param_bytes: int | None = None

    def fits(self, est: costmod.CostEstimate) -> bool:
        return (est.flash_bytes <= self.flash_bytes and est.ram_bytes <= self.ram_bytes
                and (self.param_bytes is None or est.param_bytes <= self.param_bytes))


@dataclass(frozen=True)
class PruneConfig:
    """Everything that steers a pruning run (the CLI's options)."""

    importance: str = "l1"  # l1 | taylor | random | synflow
    schedule: str = "iterative"  # iterative | oneshot | uniform
    steps: int = 4  # prune steps of the iterative schedule
    step_epochs: int = 1  # brief fine-tune after each iterative step
    finetune_epochs: int = 10  # final fine-tune
    finetune_lr: float = 1e-3
    batch_size: int = 64
    min_channels: int = 4  # no group goes below this (nor below round_to)
    round_to: int = 1  # pruned groups keep a multiple of this many channels
    from_scratch: bool = False  # re-initialise the pruned architecture and train it
    force_ratio: float | None = None  # also shrink the .tflite by this fraction (even if it fits)
    seed: int = 0

    def __post_init__(self):
        from tinyprune.importance import CRITERIA

        if self.importance not in CRITERIA:
            raise BadInput(f"unknown importance '{self.importance}'", hint="choose one of " + ", ".join(CRITERIA))
        if self.schedule not in SCHEDULES:
            raise BadInput(f"unknown schedule '{self.schedule}'", hint="choose one of " + ", ".join(SCHEDULES))
        if self.min_channels < 1:
            raise BadInput(f"--min-channels must be at least 1, got {self.min_channels}")
        if self.round_to < 1:
            raise BadInput(f"--round-to must be at least 1, got {self.round_to}")
        if self.steps < 1:
            raise BadInput(f"--steps must be at least 1, got {self.steps}")
        if self.finetune_epochs < 0 or self.step_epochs < 0:
            raise BadInput("fine-tuning epochs cannot be negative")
        if not 0 < self.finetune_lr < float("inf"):  # also rejects NaN and infinity
            raise BadInput(f"--lr must be positive, got {self.finetune_lr}")
        if self.batch_size < 1:
            raise BadInput(f"the batch size must be at least 1, got {self.batch_size}")
        if self.force_ratio is not None and not 0 < self.force_ratio < 1:
            raise BadInput(f"--force-ratio must be between 0 and 1 (exclusive), got {self.force_ratio}")

    @property
    def floor(self) -> int:
        """The fewest channels a pruned group keeps."""
        return math.ceil(self.min_channels / self.round_to) * self.round_to


# ---- groups and surgery ------------------------------------------------------------------------

@dataclass(frozen=True)
class ChannelGroup:
    """Channels that must be removed together (torch-pruning's Group, by module names)."""

    name: str  # the first layer (module order) whose output channels the group removes
    root: str  # the module torch-pruning roots the group at
    out_layers: tuple[str, ...]  # conv/dense layers losing output channels
    in_layers: tuple[str, ...]  # conv/dense layers losing input channels
    channels: int

    def tp_group(self, DG: tp.DependencyGraph) -> tp.Group:
        module = _module(DG.model, self.root)
        pruner = DG.get_pruner_of_module(module)
        return DG.get_pruning_group(module, pruner.prune_out_channels, list(range(self.channels)))


def allowed_counts(original: int, cfg: "PruneConfig") -> list[int]:
    """Channel counts a group that started with ``original`` channels may have, largest first:
    the original width, then the multiples of ``round_to`` below it down to the floor."""
    counts = [original]
    c = (original - 1) // cfg.round_to * cfg.round_to
    while c >= cfg.floor:
        counts.append(c)
        c -= cfg.round_to
    return counts


def _module(model: nn.Module, name: str) -> nn.Module:
    return dict(model.named_modules())[name]


def build_graph(model: nn.Module, input_shape) -> tp.DependencyGraph:
    was = model.training
    model.eval()  # BatchNorm1d cannot run a batch of one in training mode
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tp.DependencyGraph().build_dependency(model, example_inputs=torch.randn(1, *input_shape), verbose=False)
    except Exception as exc:
        raise BadInput(f"torch-pruning could not trace the model: {type(exc).__name__}: {exc}",
                       hint="the model must run on one sample of its input shape with autograd enabled") from None
    finally:
        model.train(was)


def output_layers(model: nn.Module, input_shape) -> tuple[str, ...]:
    """Layers whose outputs are the model's outputs (never pruned)."""
    return lower(model, tuple(input_shape)).output_layers


def find_groups(model: nn.Module, input_shape, DG: tp.DependencyGraph | None = None,
                protected: tuple[str, ...] | None = None) -> tuple[list[ChannelGroup], tp.DependencyGraph]:
    """The prunable channel groups, in module order; layers in ``protected`` (default: the output
    layers) keep every output channel."""
    DG = DG or build_graph(model, input_shape)
    protected = output_layers(model, input_shape) if protected is None else protected
    names = {m: n for n, m in model.named_modules()}
    order = {n: i for i, n in enumerate(names.values())}
    ignored = [_module(model, n) for n in protected]
    groups = []
    for group in DG.get_all_groups(ignored_layers=ignored, root_module_types=PRUNABLE_TYPES):
        outs, ins = [], []
        for dep, _ in group:
            m = dep.target.module
            if not isinstance(m, PRUNABLE_TYPES) or m not in names:
                continue
            if DG.is_out_channel_pruning_fn(dep.handler):
                outs.append(names[m])
            elif DG.is_in_channel_pruning_fn(dep.handler):
                ins.append(names[m])
        if not outs:
            continue
        outs = sorted(set(outs), key=order.get)
        ins = sorted(set(ins), key=order.get)
        root = names[group[0].dep.target.module]
        groups.append(ChannelGroup(outs[0], root, tuple(outs), tuple(ins), len(group[0].idxs)))
    groups.sort(key=lambda g: order[g.name])
    was = model.training
    try:
        with torch.no_grad():
            out_shape = tuple(model.eval()(torch.zeros(2, *input_shape)).shape)
    finally:
        model.train(was)
    return [g for g in groups if _keeps_interface(model, input_shape, g, out_shape)], DG


def _keeps_interface(model: nn.Module, input_shape, g: ChannelGroup, out_shape: tuple[int, ...]) -> bool:
    """Whether removing one channel of ``g`` leaves the model's input and output shapes alone.

    torch-pruning's graph has no node for the model's input, so a group coupled to the input
    channels (a depthwise convolution reading the input, a residual ``x + conv(x)`` on the
    input) comes back as prunable, and pruning it makes a model that rejects its own input.
    A probe on a copy finds those groups; they are left unpruned."""
    if g.channels < 2:
        return True  # never pruned anyway
    probe = copy.deepcopy(model)
    try:
        apply_channels(probe, input_shape, [g], {g.name: g.channels - 1}, {g.name: np.arange(g.channels, dtype=float)})
        with torch.no_grad():
            return tuple(probe.eval()(torch.zeros(2, *input_shape)).shape) == out_shape
    except Exception:  # a shape error inside the user's forward: the group touches the interface
        return False


def apply_channels(model: nn.Module, input_shape, groups: list[ChannelGroup], keep: dict[str, int],
                   scores: dict[str, np.ndarray]) -> list[ChannelGroup]:
    """Prune ``model`` in place so that group ``g`` keeps ``keep[g]`` channels, dropping the
    lowest-scored ones; returns the groups with their new widths."""
    DG = build_graph(model, input_shape)
    out = []
    for g in groups:
        k = keep.get(g.name, g.channels)
        if not 1 <= k <= g.channels:
            raise ValueError(f"group {g.name}: cannot keep {k} of {g.channels} channels")
        if k < g.channels:
            order = np.argsort(scores[g.name], kind="stable")
            drop = sorted(int(i) for i in order[: g.channels - k])
            module = _module(model, g.root)
            pruner = DG.get_pruner_of_module(module)
            group = DG.get_pruning_group(module, pruner.prune_out_channels, drop)
            group.prune()
        out.append(ChannelGroup(g.name, g.root, g.out_layers, g.in_layers, k))
    return out


def group_widths(model: nn.Module, groups: list[ChannelGroup]) -> dict[str, int]:
    """Current channel count of each group, read from its first layer."""
    mods = dict(model.named_modules())
    out = {}
    for g in groups:
        m = mods[g.name]
        out[g.name] = m.out_channels if isinstance(m, (nn.Conv1d, nn.Conv2d)) else m.out_features
    return out


# ---- the cost model as a function of channel counts ----------------------------------------------

class ChannelCostModel:
    """Exact cost estimates for any channel counts of ``groups``, without surgery.

    Every dimension of every tensor of the lowered graph is affine in the groups' channel
    counts (a channel dimension, or channels x positions after a flatten); one probe per
    group (one channel removed on a copy) measures the coefficients, and products of the
    dimensions give element counts, so weights that depend on two groups are exact too.
    """

    def __init__(self, model: nn.Module, input_shape, groups: list[ChannelGroup],
                 constants: costmod.CostConstants = costmod.DEFAULT_CONSTANTS, core: str | None = None):
        self.input_shape = tuple(input_shape)
        self.groups = list(groups)
        self.k = constants
        self.core = core
        self.graph = lower(model, self.input_shape)
        self.base_channels = np.array([g.channels for g in groups], dtype=np.int64)
        self._ndims = [len(t.shape) for t in self.graph.tensors]
        base = np.array([d for t in self.graph.tensors for d in t.shape], dtype=np.int64)
        self._base = base
        self._coef = np.zeros((len(groups), len(base)), dtype=np.int64)
        for i, g in enumerate(groups):
            if g.channels < 2:
                continue
            probe = copy.deepcopy(model)
            apply_channels(probe, self.input_shape, [g], {g.name: g.channels - 1}, {g.name: np.arange(g.channels, dtype=float)})
            pg = lower(probe, self.input_shape)
            if [len(t.shape) for t in pg.tensors] != self._ndims:
                raise BadInput(f"pruning group {g.name} changes the structure of the lowered graph",
                               hint="this model is not supported by the channel cost model")
            self._coef[i] = base - np.array([d for t in pg.tensors for d in t.shape], dtype=np.int64)
        self._prepare_fast()

    def _dims(self, channels: np.ndarray) -> np.ndarray:
        return self._base - (self.base_channels - channels) @ self._coef

    def _shapes(self, channels) -> list[tuple[int, ...]]:
        dims = self._dims(np.asarray(channels, dtype=np.int64))
        out, i = [], 0
        for n in self._ndims:
            out.append(tuple(int(d) for d in dims[i:i + n]))
            i += n
        return out

    def vector(self, keep: dict[str, int]) -> np.ndarray:
        return np.array([keep.get(g.name, g.channels) for g in self.groups], dtype=np.int64)

    def graph_for(self, keep: dict[str, int]) -> Graph:
        return self.graph.with_shapes(self._shapes(self.vector(keep)))

    def price(self, keep: dict[str, int]) -> costmod.CostEstimate:
        return costmod.price(self.graph_for(keep), self.k, self.core)

    # fast path for the search: flash exactly, RAM as activations alive per operator
    def _prepare_fast(self) -> None:
        g, k = self.graph, self.k
        plan = costmod.plan_memory(g, k)
        self._buffers = sorted(plan.lifetimes)
        n_ops = len(g.ops)
        self._alive = np.zeros((n_ops, len(self._buffers)))
        for j, b in enumerate(self._buffers):
            first, last = plan.lifetimes[b]
            self._alive[first:min(last, n_ops - 1) + 1, j] = 1.0
        self._starts = np.cumsum([0] + self._ndims[:-1])
        self._code = costmod.runtime_code_bytes([op.kind for op in g.ops], k, self.core)
        self._fixed_ram = k.runtime_state_bytes + k.stack_reserve_bytes
        quantized = [t for t in g.tensors if t.quantized]
        self._qdim_pos = np.array([self._starts[t.index] + t.qdim for t in quantized if t.qdim is not None], dtype=np.int64)
        self._per_tensor_quant = sum(1 for t in quantized if t.qdim is None)
        self._const_idx = [t.index for t in g.tensors if t.const]
        self._const_width = np.array([4 if g.tensors[i].dtype == "int32" else 1 for i in self._const_idx])
        self._param_mask = np.array([g.tensors[i].role in ("weight", "bias") for i in self._const_idx])
        self._static_model = (costmod.model_bytes(g, k) - sum(t.nbytes for t in g.tensors if t.const)
                              - k.quant_channel_bytes * sum(t.quant_channels for t in g.tensors))

    def fast(self, keep: dict[str, int]) -> "FastCost":
        """Flash and parameter bytes exactly, RAM as the activation bytes alive at each operator."""
        dims = self._dims(self.vector(keep))
        numel = np.array([int(np.prod(dims[s:s + n])) if n else 1 for s, n in zip(self._starts, self._ndims)])
        const_bytes = numel[self._const_idx] * self._const_width
        qch = int(dims[self._qdim_pos].sum()) + self._per_tensor_quant
        flash = self._static_model + int(const_bytes.sum()) + self.k.quant_channel_bytes * qch + self._code
        a = self.k.arena_alignment
        sizes = (numel[self._buffers] + a - 1) // a * a
        return FastCost(flash, self._alive @ sizes, int(const_bytes[self._param_mask].sum()))

    def ram_overhead(self) -> int:
        """RAM besides the activation plan: tensor locations, runtime state, stack reserve."""
        n = len(self.graph.tensors)
        return costmod._align(self.k.arena_location_bytes * n, self.k.arena_alignment) + self._fixed_ram


@dataclass(frozen=True)
class FastCost:
    flash_bytes: int
    live_bytes: np.ndarray  # per operator
    param_bytes: int


# ---- feasibility ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Feasibility:
    before: costmod.CostEstimate
    minimal: costmod.CostEstimate
    minimal_channels: dict[str, int]
    groups: tuple[ChannelGroup, ...]
    protected: tuple[str, ...]
    fits_now: bool


def minimal_channels(groups: list[ChannelGroup], cfg: PruneConfig) -> dict[str, int]:
    return {g.name: allowed_counts(g.channels, cfg)[-1] for g in groups}


def check_budget(model: nn.Module, input_shape, budget: Budget, cfg: PruneConfig = PruneConfig(),
                 constants: costmod.CostConstants = costmod.DEFAULT_CONSTANTS, core: str | None = None,
                 protected: tuple[str, ...] | None = None) -> Feasibility:
    """Fast (no training): raises BudgetError if no pruning of this architecture fits ``budget``."""
    input_shape = tuple(input_shape)
    protected = output_layers(model, input_shape) if protected is None else protected
    groups, _ = find_groups(model, input_shape, protected=protected)
    before = costmod.estimate(model, input_shape, constants, core)
    cm = ChannelCostModel(model, input_shape, groups, constants, core)
    mins = minimal_channels(groups, cfg)
    minimal = cm.price(mins)
    if not budget.fits(minimal):
        raise BudgetError(_impossible_message(minimal, budget, cfg), hint=_impossible_hint(minimal, budget))
    target = effective_target(before, budget, cfg)
    if not target.fits(minimal):
        raise BudgetError(
            f"--force-ratio {cfg.force_ratio} asks for at most {target.flash_bytes} bytes of flash, but the smallest "
            f"this architecture reaches is {minimal.flash_bytes} bytes",
            hint="use a smaller --force-ratio",
        )
    return Feasibility(before, minimal, mins, tuple(groups), tuple(protected), budget.fits(before))


def effective_target(before: costmod.CostEstimate, budget: Budget, cfg: PruneConfig) -> Budget:
    """The budget, tightened by ``force_ratio`` (the fraction of the .tflite to remove)."""
    if cfg.force_ratio is None:
        return budget
    flash = before.runtime_code_bytes + int((1 - cfg.force_ratio) * before.model_bytes)
    return Budget(min(budget.flash_bytes, flash), budget.ram_bytes,
                  f"{budget.source}, .tflite shrunk by --force-ratio {cfg.force_ratio}", budget.param_bytes)


def _impossible_message(minimal: costmod.CostEstimate, budget: Budget, cfg: PruneConfig) -> str:
    largest = minimal.layer(minimal.largest_layer)
    peak = minimal.layer(minimal.peak_layer)
    problems = []
    if minimal.flash_bytes > budget.flash_bytes:
        problems.append("flash")
    if minimal.ram_bytes > budget.ram_bytes:
        problems.append("RAM")
    return (
        f"no pruning of this architecture fits the {' and '.join(problems)} budget ({budget.source}). "
        f"With every prunable layer at its minimum of {cfg.floor} channels the smallest reachable is "
        f"flash {minimal.flash_bytes} bytes ({format_size(minimal.flash_bytes)}; budget {budget.flash_bytes}) "
        f"and RAM {minimal.ram_bytes} bytes ({format_size(minimal.ram_bytes)}; budget {budget.ram_bytes}). "
        f"Flash is dominated by layer '{largest.name}' ({largest.flash_bytes} bytes of the {minimal.model_bytes}-byte "
        f"model, plus {minimal.runtime_code_bytes} bytes of runtime code); RAM peaks at layer '{peak.name}' "
        f"({minimal.activation_peak_bytes} bytes of activations, plus {minimal.ram_bytes - minimal.arena_bytes} "
        f"bytes of runtime state and stack reserve)."
    )


def _impossible_hint(minimal: costmod.CostEstimate, budget: Budget) -> str:
    return ("choose a board with more memory (`tinyprune boards`), raise --flash/--ram, lower --min-channels, "
            "or use a smaller architecture (input size and the unprunable output layers set the floor)")


# ---- the run --------------------------------------------------------------------------------------

@dataclass
class PruneResult:
    model: nn.Module
    before: costmod.CostEstimate
    after: costmod.CostEstimate
    minimal: costmod.CostEstimate
    budget: Budget  # as given
    target: Budget  # what the search aimed at (tighter with force_ratio)
    groups_before: list[ChannelGroup]
    groups_after: list[ChannelGroup]
    protected: tuple[str, ...]
    metric: str  # accuracy or mse
    val_before: float
    val_after: float
    test_before: float
    test_after: float
    passed_through: bool
    steps: list[dict] = field(default_factory=list)
    chosen_step: int = 0
    finetune_epochs_total: int = 0

    @property
    def fits(self) -> bool:
        return self.budget.fits(self.after)


def prune_to_budget(model: nn.Module, input_shape, data, budget: Budget, cfg: PruneConfig = PruneConfig(),
                    task: str = "classification", constants: costmod.CostConstants = costmod.DEFAULT_CONSTANTS,
                    core: str | None = None, feasibility: Feasibility | None = None,
                    on_step: Callable[[dict], None] | None = None) -> PruneResult:
    """Prune ``model`` (in place; also returned) until its estimated int8 cost fits ``budget``."""
    from tinyprune import search

    return search.run(model, tuple(input_shape), data, budget, cfg, task, constants, core, feasibility, on_step)


def layer_table(before: costmod.CostEstimate, after: costmod.CostEstimate, groups: list[ChannelGroup],
                protected: tuple[str, ...]) -> list[dict]:
    """Per weighted layer: channels, params, activation and flash bytes before and after."""
    group_of = {n: g.name for g in groups for n in g.out_layers}
    rows = []
    after_by = {lc.name: lc for lc in after.layers}
    for lb in before.layers:
        if lb.out_channels is None:
            continue
        la = after_by.get(lb.name, lb)
        rows.append({
            "name": lb.name,
            "op": next((o for o in lb.ops if o not in ("PAD", "RESHAPE")), lb.ops[0]),
            "group": group_of.get(lb.name),
            "prunable": lb.name in group_of,
            "protected": lb.name in protected,
            "in_channels_before": lb.in_channels,
            "in_channels_after": la.in_channels,
            "channels_before": lb.out_channels,
            "channels_after": la.out_channels,
            "params_before": lb.params,
            "params_after": la.params,
            "macs_before": lb.macs,
            "macs_after": la.macs,
            "activation_bytes_before": lb.activation_bytes,
            "activation_bytes_after": la.activation_bytes,
            "flash_bytes_before": lb.flash_bytes,
            "flash_bytes_after": la.flash_bytes,
        })
    return rows


def torch_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def config_dict(cfg: PruneConfig) -> dict:
    return asdict(cfg)
