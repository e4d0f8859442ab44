"""The budget search: which channels to remove, step by step, until the model fits.

Each step ranks every remaining channel of every group globally by

    importance lost / budget excess removed

where the importance is the chosen criterion's (``tinyprune.importance``, mean-normalised per
group, weighted up as a group gets narrower) and the excess is measured on the cost model
(``ChannelCostModel``): flash over budget, plus, for every operator, activation bytes alive
over the RAM budget. A group that does not touch an over-budget resource frees nothing and is
left alone: when RAM binds only the layers whose activations are alive at the peak are cut;
when flash binds, the layers with most parameters win the ranking. The cheapest chunk is
removed, the costs are recomputed, and so on until the step's target fits.

Schedules: ``iterative`` reaches the budget in ``steps`` geometric stages, fine-tuning briefly
and re-measuring after each; ``oneshot`` plans the whole cut at once; ``uniform`` (a baseline)
removes the same fraction of every group. All end with a fine-tune (or, with
``from_scratch``, re-initialise the pruned architecture and train it).
"""

from __future__ import annotations

import math
import time

import numpy as np
from torch import nn

from tinyprune import cost as costmod
from tinyprune.importance import channel_scores
from tinyprune.progress import bar
from tinyprune.prune import (
    Budget, ChannelCostModel, ChannelGroup, Feasibility, PruneConfig, PruneResult, allowed_counts,
    apply_channels, build_graph, check_budget, effective_target, group_widths, torch_params,
)
from tinyprune.train import METRICS, TrainConfig, evaluate, train

CHUNK_FRACTION = 0.05  # a search move removes about this fraction of a group's original width
WIDTH_PENALTY = 1.0  # importance lost is weighted by (original width / width after) ** this
EXTRA_STEPS = 3  # further steps allowed when a planned step misses its target (estimate drift)


# ---- planning on the cost model ------------------------------------------------------------------

def _next_lower(allowed: list[int], current: int, original: int) -> int | None:
    below = [c for c in allowed if c < current]
    if not below:
        return None
    want = current - max(1, math.ceil(original * CHUNK_FRACTION))
    fitting = [c for c in below if c <= want]
    return max(fitting) if fitting else min(below)


def _real_ram(cm: ChannelCostModel, keep: dict[str, int]) -> int:
    g = cm.graph_for(keep)
    plan = costmod.plan_memory(g, cm.k)
    return costmod.arena_bytes(g, plan, cm.k) + cm.k.runtime_state_bytes + cm.k.stack_reserve_bytes


def plan_channels(cm: ChannelCostModel, current: dict[str, int], scores: dict[str, np.ndarray],
                  original: dict[str, int], target: Budget, cfg: PruneConfig) -> dict[str, int] | None:
    """Greedy global ranking (see the module docstring); None if the target cannot be reached."""
    keep = dict(current)
    allowed = {n: allowed_counts(original[n], cfg) for n in keep}
    ordered = {n: np.sort(scores[n]) for n in keep}
    overhead = cm.ram_overhead()
    bf, br = target.flash_bytes, target.ram_bytes
    bp = target.param_bytes
    while True:
        fc = cm.fast(keep)
        ram = _real_ram(cm, keep)
        if fc.flash_bytes <= bf and ram <= br and (bp is None or fc.param_bytes <= bp):
            return keep
        frag = ram - overhead - int(fc.live_bytes.max(initial=0))  # the planner's gaps on top of the live set
        live_budget = br - overhead - frag

        def excess(c) -> float:
            e = max(0, c.flash_bytes - bf) / bf + float(np.clip(c.live_bytes - live_budget, 0, None).sum()) / br
            return e + (max(0, c.param_bytes - bp) / bp if bp else 0.0)

        e0 = excess(fc)
        best, best_ratio = None, math.inf
        for name in keep:
            nxt = _next_lower(allowed[name], keep[name], original[name])
            if nxt is None:
                continue
            trial = dict(keep)
            trial[name] = nxt
            gain = e0 - excess(cm.fast(trial))
            if gain <= 0:
                continue
            start = current[name] - keep[name]
            lost = float(ordered[name][start:start + keep[name] - nxt].sum())
            ratio = (lost + 1e-9) * (original[name] / nxt) ** WIDTH_PENALTY / gain
            if ratio < best_ratio:
                best, best_ratio = (name, nxt), ratio
        if best is None:
            return None
        keep[best[0]] = best[1]


def uniform_channels(cm: ChannelCostModel, original: dict[str, int], target: Budget,
                     cfg: PruneConfig) -> dict[str, int] | None:
    """The same pruning ratio for every group: the smallest ratio that fits (bisection)."""
    allowed = {n: allowed_counts(original[n], cfg) for n in original}

    def widths(ratio: float) -> dict[str, int]:
        out = {}
        for n, c in original.items():
            want = c * (1 - ratio)
            ok = [a for a in allowed[n] if a <= want + 1e-9]
            out[n] = max(ok) if ok else allowed[n][-1]
        return out

    def fits(ratio: float) -> bool:
        keep = widths(ratio)
        fc = cm.fast(keep)
        return (fc.flash_bytes <= target.flash_bytes and _real_ram(cm, keep) <= target.ram_bytes
                and (target.param_bytes is None or fc.param_bytes <= target.param_bytes))

    if not fits(1.0):
        return None
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return widths(hi)


def step_target(before: costmod.CostEstimate, target: Budget, step: int, steps: int) -> Budget:
    """The budget of step ``step`` of ``steps``: geometric from the unpruned cost to the target."""
    def level(start: int, goal: int) -> int:
        if start <= goal:
            return goal
        return int(goal * (start / goal) ** ((steps - step) / steps))

    params = None if target.param_bytes is None else level(before.param_bytes, target.param_bytes)
    return Budget(level(before.flash_bytes, target.flash_bytes), level(before.ram_bytes, target.ram_bytes),
                  f"step {step} of {steps}", params)


# ---- the run ------------------------------------------------------------------------------------

def _binding(est: costmod.CostEstimate, target: Budget) -> str | None:
    over = [r for r, v, b in (("flash", est.flash_bytes, target.flash_bytes), ("ram", est.ram_bytes, target.ram_bytes),
                              ("params", est.param_bytes, target.param_bytes)) if b is not None and v > b]
    return "+".join(over) or None


def _record(step: int, phase: str, model: nn.Module, est: costmod.CostEstimate, groups: list[ChannelGroup],
            target: Budget, metric: str, value: float, epochs: int, seconds: float) -> dict:
    return {
        "step": step,
        "phase": phase,
        "channels": group_widths(model, groups) if groups else {},
        "params": torch_params(model),
        "deployed_params": est.params,
        "macs": est.macs,
        "param_bytes": est.param_bytes,
        "model_bytes": est.model_bytes,
        "flash_estimate_bytes": est.flash_bytes,
        "ram_estimate_bytes": est.ram_bytes,
        "arena_bytes": est.arena_bytes,
        "target_flash_bytes": target.flash_bytes,
        "target_ram_bytes": target.ram_bytes,
        "over_budget": _binding(est, target),
        f"val_{metric}": value,
        "finetune_epochs": epochs,
        "seconds": round(seconds, 2),
    }


def _finetune(model, data, epochs: int, cfg: PruneConfig, task: str, seed: int, desc: str, lr: float | None = None):
    if epochs <= 0:
        return
    train(model, data, TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=lr or cfg.finetune_lr, seed=seed),
          desc=desc, task=task)


def reinitialise(model: nn.Module, seed: int) -> None:
    """Fresh random weights (and BatchNorm statistics) for every layer: the from-scratch baseline."""
    import torch

    torch.manual_seed(seed)
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
        if hasattr(m, "reset_running_stats"):
            m.reset_running_stats()


def run(model: nn.Module, input_shape: tuple[int, ...], data, budget: Budget, cfg: PruneConfig, task: str,
        constants: costmod.CostConstants, core: str | None, feasibility: Feasibility | None, on_step) -> PruneResult:
    feas = feasibility or check_budget(model, input_shape, budget, cfg, constants, core)
    groups = list(feas.groups)
    original = {g.name: g.channels for g in groups}
    before = feas.before
    metric = METRICS[task]
    val_before = evaluate(model, data.x_val, data.y_val, task)
    test_before = evaluate(model, data.x_test, data.y_test, task)
    target = effective_target(before, budget, cfg)
    steps: list[dict] = []

    def record(entry: dict) -> None:
        steps.append(entry)
        if on_step:
            on_step(entry)

    t0 = time.monotonic()
    record(_record(0, "start", model, before, groups, target, metric, val_before, 0, 0.0))
    result = dict(model=model, before=before, minimal=feas.minimal, budget=budget, target=target,
                  groups_before=groups, protected=feas.protected, metric=metric, val_before=val_before,
                  test_before=test_before)
    if target.fits(before):
        return PruneResult(after=before, groups_after=groups, val_after=val_before, test_after=test_before,
                           passed_through=True, steps=steps, chosen_step=0, **result)

    epochs_used = 0
    current = dict(original)
    est = before
    if cfg.schedule == "uniform":
        cm = ChannelCostModel(model, input_shape, groups, constants, core)
        keep = uniform_channels(cm, original, target, cfg) or dict(feas.minimal_channels)
        scores = channel_scores(cfg.importance, model, build_graph(model, input_shape), groups, input_shape,
                                data, cfg.seed, task)
        groups = apply_channels(model, input_shape, groups, keep, scores)
        est = costmod.estimate(model, input_shape, constants, core)
        record(_record(1, "prune", model, est, groups, target, metric,
                       evaluate(model, data.x_val, data.y_val, task), 0, time.monotonic() - t0))
    else:
        planned = 1 if cfg.schedule == "oneshot" else cfg.steps
        with bar(total=planned, desc="prune", unit="step") as progress:
            step = 0
            while step < planned + EXTRA_STEPS:
                step += 1
                if step > planned and target.fits(est):
                    break
                goal = step_target(before, target, step, planned) if step <= planned else _tighter(target, est)
                cm = ChannelCostModel(model, input_shape, groups, constants, core)
                scores = channel_scores(cfg.importance, model, build_graph(model, input_shape), groups, input_shape,
                                        data, cfg.seed + step, task)
                keep = plan_channels(cm, current, scores, original, goal, cfg)
                if keep is None:
                    keep = {n: min(current[n], v) for n, v in feas.minimal_channels.items()}
                groups = apply_channels(model, input_shape, groups, keep, scores)
                current = {g.name: g.channels for g in groups}
                epochs = cfg.step_epochs if cfg.schedule == "iterative" else 0
                _finetune(model, data, epochs, cfg, task, cfg.seed + step, f"fine-tune step {step}")
                epochs_used += epochs
                est = costmod.estimate(model, input_shape, constants, core)
                record(_record(step, "prune", model, est, groups, target, metric,
                               evaluate(model, data.x_val, data.y_val, task), epochs, time.monotonic() - t0))
                progress.update(1)
                progress.set_postfix(flash=est.flash_bytes, ram=est.ram_bytes)
                if step >= planned and target.fits(est):
                    break
    if cfg.from_scratch:
        total = max(1, epochs_used + cfg.finetune_epochs)
        reinitialise(model, cfg.seed)
        _finetune(model, data, total, cfg, task, cfg.seed, "train pruned from scratch", lr=TrainConfig().lr)
        phase, epochs = "scratch", total
    else:
        _finetune(model, data, cfg.finetune_epochs, cfg, task, cfg.seed, "fine-tune")
        phase, epochs = "final", cfg.finetune_epochs
    epochs_used += epochs if phase == "final" else 0
    val_after = evaluate(model, data.x_val, data.y_val, task)
    record(_record(len(steps), phase, model, est, groups, target, metric, val_after, epochs, time.monotonic() - t0))
    return PruneResult(after=est, groups_after=groups, val_after=val_after,
                       test_after=evaluate(model, data.x_test, data.y_test, task), passed_through=False,
                       steps=steps, chosen_step=len(steps) - 1,
                       finetune_epochs_total=epochs if phase == "scratch" else epochs_used, **result)


def _tighter(target: Budget, est: costmod.CostEstimate) -> Budget:
    """A target shrunk by the amount the last step overshot it (the estimate drifted)."""
    flash = target.flash_bytes - max(0, est.flash_bytes - target.flash_bytes)
    ram = target.ram_bytes - max(0, est.ram_bytes - target.ram_bytes)
    params = None if target.param_bytes is None else target.param_bytes - max(0, est.param_bytes - target.param_bytes)
    return Budget(flash, ram, "retry", params)
