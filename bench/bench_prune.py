"""Pruning, ShrinkBench style: accuracy of ``mnist1d-cnn`` at 2x, 4x and 8x smaller int8 weights
after the same fine-tuning budget, for each importance criterion under the budget search, the
uniform per-layer ratio (L1) and the searched architecture trained from scratch; 3 seeds.

The compression ratio is on the int8 weights + int32 biases stored in flash
(``CostEstimate.param_bytes``; ``Budget.param_bytes``): the whole flash figure also holds about
10 KiB of runtime code and the .tflite's tables, which no pruning removes, so "8x smaller flash"
is not reachable while "8x smaller weights" is. Flash and RAM are left unconstrained.

Every method gets the same number of fine-tuning epochs (``EPOCHS``): the iterative search
spends ``STEPS`` of them between its steps and the rest at the end; uniform and the search's
one-shot variants spend them all at the end; from scratch trains the pruned architecture, freshly
initialised, for all of them. ``TINYPRUNE_BENCH_QUICK=1`` runs one seed at 2x and 8x only.
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TINYPRUNE_PROGRESS", "0")
ROOT = Path(__file__).resolve().parents[1]

RATIOS = (2, 4, 8)
SEEDS = (0, 1, 2)
EPOCHS = 14  # the fine-tuning budget of every method (the CLI's default: 4 steps x 1 + 10)
STEPS = 4
BASE_TARGET = 0.90  # the unpruned model must reach this test accuracy first
MARGIN = 0.01  # the budget search should beat uniform L1 by this much at every ratio >= 2x

# method -> PruneConfig fields (besides the seed and the epochs)
METHODS = {
    "l1": dict(importance="l1"),
    "taylor": dict(importance="taylor"),
    "random": dict(importance="random"),
    "l1-oneshot": dict(importance="l1", schedule="oneshot"),
    "uniform-l1": dict(importance="l1", schedule="uniform"),
    "l1-from-scratch": dict(importance="l1", from_scratch=True),
}


def _config(method: str, seed: int, epochs: int):
    from tinyprune.prune import PruneConfig

    fields = dict(METHODS[method])
    if fields.get("schedule") in ("uniform", "oneshot"):
        fields.update(finetune_epochs=epochs)
    else:
        fields.update(schedule="iterative", steps=STEPS, step_epochs=1, finetune_epochs=epochs - STEPS)
    return PruneConfig(seed=seed, **fields)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def run() -> list[dict]:
    import torch

    from tinyprune import cost, zoo
    from tinyprune.data import load_dataset
    from tinyprune.prune import Budget, prune_to_budget
    from tinyprune.train import TrainConfig, evaluate, trained_zoo_checkpoint

    torch.set_num_threads(1)  # tiny models: threads only add overhead (and noise on a shared machine)
    quick = os.environ.get("TINYPRUNE_BENCH_QUICK", "") not in ("", "0")
    ratios, seeds = ((2, 8), (0,)) if quick else (RATIOS, SEEDS)
    entry = zoo.get("mnist1d-cnn")
    data = load_dataset("mnist1d")
    train_cfg = TrainConfig()
    base = entry.build()
    base.load_state_dict(torch.load(trained_zoo_checkpoint(entry.name, "mnist1d", train_cfg), map_location="cpu",
                                    weights_only=True))
    base.eval()
    base_acc = evaluate(base, data.x_test, data.y_test)
    before = cost.estimate(base, entry.input_shape)
    if base_acc < BASE_TARGET:
        raise RuntimeError(f"the unpruned mnist1d-cnn reaches only {base_acc:.3f} test accuracy (< {BASE_TARGET})")

    rows, acc = [], {}
    start = time.monotonic()
    for ratio in ratios:
        budget = Budget(1 << 30, 1 << 30, f"{ratio}x smaller int8 weights", param_bytes=before.param_bytes // ratio)
        for method in METHODS:
            results = []
            for seed in seeds:
                model = copy.deepcopy(base)
                results.append(prune_to_budget(model, entry.input_shape, data, budget, _config(method, seed, EPOCHS)))
            accs = [r.test_after for r in results]
            mean, std = _mean_std(accs)
            acc[ratio, method] = mean
            last = results[-1]
            rows.append({
                "compression": f"{ratio}x",
                "method": method,
                "test_accuracy": f"{100 * mean:.2f} ± {100 * std:.2f}",
                "accuracy_mean": round(mean, 4),
                "accuracy_std": round(std, 4),
                "param_bytes": last.after.param_bytes,
                "actual_ratio": round(before.param_bytes / last.after.param_bytes, 2),
                "flash_bytes": last.after.flash_bytes,
                "ram_bytes": last.after.ram_bytes,
                "macs": last.after.macs,
                "channels": "/".join(str(g.channels) for g in last.groups_after),
                "epochs": last.finetune_epochs_total,
                "all_fit": all(r.fits for r in results),
            })
    seconds = time.monotonic() - start

    notes = [f"mnist1d-cnn trained {train_cfg.epochs} epochs first: test accuracy {100 * base_acc:.2f} % "
             f"(target >= {100 * BASE_TARGET:.0f} %), {before.param_bytes} bytes of int8 weights + int32 biases, "
             f"flash {before.flash_bytes}, RAM {before.ram_bytes}",
             f"{len(seeds)} seed(s) {', '.join(map(str, seeds))}; mean ± sample std of the test accuracy; "
             f"{EPOCHS} fine-tuning epochs for every method; channels/flash/RAM of the last seed; "
             f"{seconds:.0f} s" + (" (TINYPRUNE_BENCH_QUICK)" if quick else "")]
    for ratio in ratios:
        search = {m: acc[ratio, m] for m in ("l1", "taylor", "random")}
        best = max(search, key=search.get)
        gain = acc[ratio, "l1"] - acc[ratio, "uniform-l1"]
        best_gain = search[best] - acc[ratio, "uniform-l1"]
        headroom = base_acc - acc[ratio, "uniform-l1"]
        notes.append(
            f"{ratio}x: budget search (l1) vs uniform l1: {100 * gain:+.2f} points (one-shot search "
            f"{100 * (acc[ratio, 'l1-oneshot'] - acc[ratio, 'uniform-l1']):+.2f}); best search criterion ({best}) "
            f"{100 * best_gain:+.2f}; target >= +{100 * MARGIN:.0f}: " + ("met" if gain >= MARGIN else "MISSED")
            + ("" if gain >= MARGIN or headroom >= MARGIN else
               f" (uniform l1 is only {100 * headroom:.2f} points below the unpruned model here)"))
    return [{"title": "Pruning mnist1d-cnn: test accuracy at a compression of the int8 weights "
                      "(ShrinkBench style)", "rows": rows, "notes": notes}]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    from run import print_section

    for section in run():
        print_section(section)
