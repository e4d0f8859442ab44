"""``tinyprune prune``: remove whole channels until the int8 model fits a flash/RAM budget."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace
from pathlib import Path

from tinyprune.commands._common import add_board_options, add_budget_options, add_json_option, add_output_options
from tinyprune.commands.train import add_model_options

HELP = "prune whole channels until the int8 model fits a flash/RAM budget"
DESCRIPTION = """\
Structured pruning to a budget: remove whole channels (torch-pruning's dependency graph keeps
coupled layers consistent) until the model's estimated int8 deployment cost fits, fine-tuning
between steps and at the end. The result is a smaller dense model.

Budget: --board B uses the board's flash_bytes - reserved_flash_bytes and ram_bytes -
reserved_ram_bytes (see `tinyprune boards B`); --flash/--ram give sizes directly (both are
needed without --board; with --board they override its figures). Flash covers the .tflite
plus the runtime's code for the operators used; RAM covers the runtime's arena, its state and
a 4 KiB stack reserve. A budget that no pruning can meet stops at once (exit 2) with the
smallest sizes this architecture reaches; a model that already fits is passed through
unchanged (--force-ratio R prunes anyway, removing about R of the .tflite).

Without --weights a zoo model is trained first: on its built-in dataset from tinyprune's cache
(trained once, then reused), otherwise for --train-epochs.

Writes:
  DIR/model_pruned.pt     load with: model, info = tinyprune.models.load_saved_model(path)
  DIR/model_pruned.json   how to re-import it
  DIR/prune_report.json   sizes, accuracy, per-layer channels, every search step

Examples:
  tinyprune prune --model mnist1d-cnn --dataset mnist1d --board stm32vldiscovery --out runs/pruned
  tinyprune prune --model mnist1d-cnn --dataset mnist1d --flash 24K --ram 8K --round-to 8 --out runs/p8
  tinyprune prune --model net.py:build --weights net.pt --dataset data.npz --board microbit-v1 \\
      --importance taylor --schedule oneshot --finetune-epochs 20 --out runs/mine
"""


# The names --importance and --schedule accept (tinyprune.importance.CRITERIA, tinyprune.prune.SCHEDULES:
# repeated here so that `--help` needs no torch import; tests/test_prune_cli.py checks they agree).
CRITERIA = ("l1", "taylor", "random", "synflow")
SCHEDULES = ("iterative", "oneshot", "uniform")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser)
    add_board_options(parser)
    add_budget_options(parser)
    add_search_options(parser)
    add_output_options(parser)
    add_json_option(parser)


def add_search_options(parser: argparse.ArgumentParser, seed_help: str = "random seed (default 0)") -> None:
    """The pruning search's options, shared by prune, deploy and sweep."""
    g = parser.add_argument_group("search")
    g.add_argument("--importance", choices=CRITERIA, default="l1",
                   help="channel ranking: l1 magnitude (default), taylor (first order, uses data), random, "
                        "synflow (data-free)")
    g.add_argument("--schedule", choices=SCHEDULES, default="iterative",
                   help="iterative (default: --steps prune/fine-tune rounds), oneshot, or uniform (same ratio per layer)")
    g.add_argument("--steps", type=int, default=4, metavar="N", help="rounds of the iterative schedule (default 4)")
    g.add_argument("--step-epochs", type=int, default=1, metavar="N",
                   help="fine-tune epochs after each iterative round (default 1)")
    g.add_argument("--finetune-epochs", type=int, default=10, metavar="N", help="final fine-tune epochs (default 10)")
    g.add_argument("--lr", type=float, default=1e-3, help="fine-tune learning rate (default 0.001)")
    g.add_argument("--min-channels", type=int, default=4, metavar="N", help="no layer keeps fewer channels (default 4)")
    g.add_argument("--round-to", type=int, choices=(1, 2, 4, 8, 16), default=1,
                   help="pruned layers keep a multiple of this many channels (4 or 8 suit int8 SIMD kernels)")
    g.add_argument("--from-scratch", action="store_true",
                   help="re-initialise the pruned architecture and train it for the same number of epochs")
    g.add_argument("--force-ratio", type=float, metavar="R",
                   help="prune even if the model fits: remove about R (0..1) of the .tflite size")
    g.add_argument("--seed", type=int, default=0, help=seed_help)
    g.add_argument("--train-epochs", type=int, default=30, metavar="N",
                   help="epochs to train a model first when it has no --weights (default 30)")


def prune_config_from_args(args: argparse.Namespace):
    """The PruneConfig the search options describe (it validates them: bad values are exit 2)."""
    from tinyprune.errors import BadInput
    from tinyprune.prune import PruneConfig

    cfg = PruneConfig(
        importance=args.importance, schedule=args.schedule, steps=args.steps, step_epochs=args.step_epochs,
        finetune_epochs=args.finetune_epochs, finetune_lr=args.lr, min_channels=args.min_channels,
        round_to=args.round_to, from_scratch=args.from_scratch, force_ratio=args.force_ratio, seed=args.seed,
    )
    if args.train_epochs < 1:
        raise BadInput(f"--train-epochs must be at least 1, got {args.train_epochs}")
    return cfg


def budget_from_args(args: argparse.Namespace):
    """The Budget and the board (or None) the options describe."""
    from tinyprune.boards import load_board
    from tinyprune.errors import BadInput
    from tinyprune.prune import Budget

    board = load_board(args.board, args.boards_dir) if args.board else None
    if board is None and (args.flash is None or args.ram is None):
        raise BadInput("no budget: give --board NAME, or both --flash SIZE and --ram SIZE",
                       hint="e.g. --board nucleo-f446re, or --flash 256K --ram 64K (see `tinyprune boards`)")
    flash = args.flash if args.flash is not None else board.budget_flash_bytes
    ram = args.ram if args.ram is not None else board.budget_ram_bytes
    parts = []
    if board:
        parts.append(f"board {board.name}")
    if args.flash is not None or args.ram is not None:
        parts.append(" ".join(f"--{k} {getattr(args, k)}" for k in ("flash", "ram") if getattr(args, k) is not None))
    return Budget(flash, ram, ", ".join(parts)), board


def prepare_weights(args, model, info, data, task, shape) -> dict:
    """Make sure the model is trained; says what it did."""
    import torch

    from tinyprune import zoo
    from tinyprune.train import TrainConfig, train, trained_zoo_checkpoint

    if args.weights:
        return {"source": "given", "path": str(Path(args.weights).resolve())}
    if _names_saved_model(args.model):
        # a whole saved model carries its weights, whatever its sidecar says it came from (a
        # `tinyprune train` output of a zoo model has kind "zoo"): never replace or retrain them
        return {"source": "saved model", "path": str(Path(args.model).resolve())}
    if info.kind == "zoo" and zoo.get(info.zoo_name).dataset == args.dataset:
        default = TrainConfig()
        print(f"No --weights: using {info.zoo_name} trained on {args.dataset} from tinyprune's cache "
              f"({default.epochs} epochs, seed {default.seed}; trained now if not cached yet)", flush=True)
        path = trained_zoo_checkpoint(info.zoo_name, args.dataset, default)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return {"source": "cached training", "path": str(path), "epochs": default.epochs, "seed": default.seed}
    cfg = TrainConfig(epochs=args.train_epochs, seed=args.seed)
    print(f"No --weights: training {args.model} on {data.name} first ({cfg.epochs} epochs, seed {cfg.seed})", flush=True)
    train(model, data, cfg, desc=f"train {args.model}", task=task)
    return {"source": "trained", "epochs": cfg.epochs, "seed": cfg.seed}


def _names_saved_model(spec: str) -> bool:
    """Whether ``--model`` names a saved model file (neither a zoo name nor file.py:factory);
    the same order of checks as ``tinyprune.models.load_model``."""
    from tinyprune import zoo

    factory = ":" in spec and spec.rsplit(":", 1)[0].endswith(".py")
    return not factory and spec not in zoo.ZOO


def run(args: argparse.Namespace) -> int:
    from tinyprune.commands.train import load_inputs
    from tinyprune.models import save_model
    from tinyprune.outdir import check_output_dir, staged_output, write_file_atomic
    from tinyprune.prune import check_budget, prune_to_budget
    from tinyprune.report import to_json, write_report

    cfg = prune_config_from_args(args)
    budget, board = budget_from_args(args)
    check_output_dir(args.out, args.force)
    data, model, info, shape, task = load_inputs(args)
    core = board.core if board else None
    feas = check_budget(model, shape, budget, cfg, core=core)  # exits 2 here if impossible, before any training
    b = feas.before
    print(f"Budget ({budget.source}): flash {_kib(budget.flash_bytes)}, RAM {_kib(budget.ram_bytes)}")
    print(f"{args.model}: estimated flash {_kib(b.flash_bytes)} (.tflite {_kib(b.model_bytes)} + runtime code "
          f"{_kib(b.runtime_code_bytes)}), RAM {_kib(b.ram_bytes)} (arena {_kib(b.arena_bytes)}); "
          f"smallest reachable: flash {_kib(feas.minimal.flash_bytes)}, RAM {_kib(feas.minimal.ram_bytes)}", flush=True)
    start = time.monotonic()
    weights = prepare_weights(args, model, info, data, task, shape)
    if feas.fits_now and cfg.force_ratio is None:
        print("The model already fits this budget: passing it through unchanged (use --force-ratio R to prune anyway)")
    result = prune_to_budget(model, shape, data, budget, cfg, task=task, core=core, feasibility=feas)
    report = build_report(args, cfg, budget, board, data, info, shape, task, weights, result, time.monotonic() - start)
    with staged_output(args.out, args.force) as tmp:
        save_model(result.model, tmp / "model_pruned.pt", replace(info, input_shape=tuple(shape)))
        write_report(tmp / "prune_report.json", report)
    if args.json_file:
        write_file_atomic(args.json_file, to_json(report))
    print(summary(report))
    print(f"Wrote {args.out}/model_pruned.pt and prune_report.json "
          f"(load: tinyprune.models.load_saved_model('{args.out}/model_pruned.pt'))")
    return 0


def build_report(args, cfg, budget, board, data, info, shape, task, weights, r, seconds) -> dict:
    from tinyprune.cost import DEFAULT_CONSTANTS
    from tinyprune.prune import layer_table, torch_params
    from tinyprune.report import new_report

    acc = r.metric == "accuracy"
    before_channels = {g.name: g.channels for g in r.groups_before}
    return new_report(
        "prune",
        model=args.model, model_kind=info.kind, dataset=args.dataset, dataset_description=data.description,
        input_shape=list(shape), task=task,
        board=board.name if board else None, core=board.core if board else None, budget_source=budget.source,
        budget_flash_bytes=budget.flash_bytes, budget_ram_bytes=budget.ram_bytes,
        target_flash_bytes=r.target.flash_bytes, target_ram_bytes=r.target.ram_bytes,
        fits=r.fits, passed_through=r.passed_through,
        params_before=r.steps[0]["params"], params_after=torch_params(r.model),
        deployed_params_before=r.before.params, deployed_params_after=r.after.params,
        macs_before=r.before.macs, macs_after=r.after.macs,
        flash_estimate_bytes=r.after.flash_bytes, ram_estimate_bytes=r.after.ram_bytes,
        flash_estimate_bytes_before=r.before.flash_bytes, ram_estimate_bytes_before=r.before.ram_bytes,
        model_bytes_estimate=r.after.model_bytes, model_bytes_estimate_before=r.before.model_bytes,
        param_bytes_after=r.after.param_bytes, param_bytes_before=r.before.param_bytes,
        runtime_code_bytes_estimate=r.after.runtime_code_bytes, arena_bytes_estimate=r.after.arena_bytes,
        tflm_arena_bytes_estimate=r.after.tflm_arena_bytes, ops=list(r.after.op_names),
        accuracy_before=r.test_before if acc else None, accuracy_after=r.test_after if acc else None,
        val_accuracy_before=r.val_before if acc else None, val_accuracy_after=r.val_after if acc else None,
        metric=r.metric, metric_before=r.test_before, metric_after=r.test_after,
        minimal={"flash_estimate_bytes": r.minimal.flash_bytes, "ram_estimate_bytes": r.minimal.ram_bytes,
                 "model_bytes": r.minimal.model_bytes, "largest_layer": r.minimal.largest_layer,
                 "peak_layer": r.minimal.peak_layer},
        weights=weights, config=asdict(cfg),
        protected_layers=list(r.protected),
        groups=[{"name": g.name, "layers": list(g.out_layers), "feeds": list(g.in_layers),
                 "channels_before": before_channels[g.name], "channels_after": g.channels} for g in r.groups_after],
        layers=layer_table(r.before, r.after, r.groups_before, r.protected),
        search_steps=[{k: v for k, v in step.items() if k != "seconds"} for step in r.steps],
        chosen_step=r.chosen_step, finetune_epochs_total=r.finetune_epochs_total,
        run={"seconds": round(seconds, 1), "search_step_seconds": [step.get("seconds") for step in r.steps]},
        cost_constants=asdict(DEFAULT_CONSTANTS) | {"shared_code_bytes": {"+".join(k): v for k, v in
                                                                           DEFAULT_CONSTANTS.shared_code_bytes.items()}},
        files={"model": "model_pruned.pt", "model_info": "model_pruned.json"},
        load="tinyprune.models.load_saved_model('model_pruned.pt')",
    )


def _kib(n: int) -> str:
    from tinyprune.sizes import format_size

    return format_size(n)


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


def summary(r: dict) -> str:
    def change(before, after) -> str:
        return f"{before} -> {after}" if before != after else f"{after} (unchanged)"

    lines = ["", "Pruning summary" + (" (passed through: it already fit)" if r["passed_through"] else "")]
    lines.append(f"  budget     flash {_kib(r['budget_flash_bytes'])}, RAM {_kib(r['budget_ram_bytes'])} ({r['budget_source']})")
    lines.append(f"  flash      {_kib(r['flash_estimate_bytes_before'])} -> {_kib(r['flash_estimate_bytes'])} "
                 f"(.tflite {_kib(r['model_bytes_estimate_before'])} -> {_kib(r['model_bytes_estimate'])})")
    lines.append(f"  RAM        {_kib(r['ram_estimate_bytes_before'])} -> {_kib(r['ram_estimate_bytes'])} "
                 f"(arena {_kib(r['arena_bytes_estimate'])})")
    lines.append(f"  params     {change(r['params_before'], r['params_after'])}; MACs {change(r['macs_before'], r['macs_after'])}")
    if r["metric"] == "accuracy":
        lines.append(f"  accuracy   {_pct(r['accuracy_before'])} -> {_pct(r['accuracy_after'])} (test set)")
    else:
        lines.append(f"  mse        {r['metric_before']:.5f} -> {r['metric_after']:.5f} (test set)")
    widths = ", ".join(f"{g['name']} {g['channels_before']}->{g['channels_after']}" for g in r["groups"]
                       if g["channels_before"] != g["channels_after"])
    if widths:
        lines.append(f"  channels   {widths}")
    lines.append(f"  fits       {'yes' if r['fits'] else 'NO'}; {len(r['search_steps'])} steps recorded in search_steps")
    return "\n".join(lines)
