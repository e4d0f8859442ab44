"""``tinyprune sweep --model M --dataset D --boards B1,B2 --flash S1,S2 --out DIR``: many deploys
across boards, budgets and seeds, and which board to pick."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from tinyprune.commands._common import add_boards_dir_option, add_threshold_options, metric_threshold
from tinyprune.commands.train import add_model_options

HELP = "many deploys across boards, budgets and seeds"
DESCRIPTION = """\
Expand a grid (boards x flash budgets x RAM budgets x seeds) and run every point as an
independent `tinyprune deploy` (prune -> convert -> build -> verify on QEMU), then answer
"which of these boards can run my model, at what accuracy, with how much headroom?" and
"how much accuracy do I lose at each flash budget?".

The float model is trained once (as deploy does without --weights) and shipped to every job.
Finished stages are cached by content hash, so what points share (such as the conversion of
the unpruned model) runs once. A point that fails, for example a budget no pruning reaches, is
recorded with its error and the others go on; --resume continues an interrupted sweep and
skips the points that finished.

Grid: --boards lists board names (or `all`, every board in `tinyprune boards`). Without
--flash/--ram each board gets its own budget (flash_bytes - reserved_flash_bytes, and the same
for RAM); with them, every board is swept over every size given. Seeds are --seed,
--seed+1, ... (--seeds N); they steer pruning, fine-tuning and calibration. --optimize and
--target apply to every point as in `tinyprune deploy`: the flash, RAM and instruction
figures are those of the firmware built at that level.

Executors: `local` (default) runs --jobs processes on this machine (default: one per core),
each single-threaded so that jobs do not fight over the cores. `ray` runs Ray tasks
(pip install 'tinyprune[ray]'): with no --ray-address it starts a local Ray instance with
--jobs CPUs; `--ray-address auto` (or host:port) joins a running cluster, whose nodes need
tinyprune, arm-none-eabi-gcc and qemu-system-arm installed. Ray workers get everything as
bytes and return every file as bytes, so they need no shared file system.
Same seeds give the same results on either executor.

Writes DIR/:
  sweep.json, sweep.csv     one row per point: board, budget, seed, fits, accuracy on the
                            target, flash/RAM used and free, instructions per inference,
                            estimated latency at the board's clock, error if any
  sweep.md, sweep.html      accuracy against the flash budget (Pareto front marked), a
                            fits/does-not-fit table per board with headroom
  accuracy_vs_flash.png, headroom.png
  points/<point>/           that point's deploy directory (as `tinyprune deploy` writes it)
  points/<point>.json, .log its row (written last: the point is finished) and its log
  .tinyprune-cache/         the stage cache (local executor and a local Ray instance)

The terminal ends with a recommendation: the cheapest board (smallest flash + RAM, as listed
in boards/) that fits on every seed and reaches --min-accuracy on average (default: the best
point's accuracy less one point), and the knee of the accuracy-vs-flash-budget curve. Models
scored by an error (fc-autoencoder's MSE, lower is better) take --max-mse instead (default:
the best point's MSE plus 10 %); their MSE is the host TFLite Micro's over the test set, which
the board's outputs match byte for byte.

Exit status 0 when the sweep ran (also when some points failed: the summary says which), 1 when
every point failed, 2 for bad input (unknown board, bad size, empty grid).

Examples:
  tinyprune sweep --model digits-cnn --dataset digits --boards all --out runs/which-board
  tinyprune sweep --model mnist1d-cnn --dataset mnist1d --boards nucleo-f446re \\
      --flash 32K,48K,64K,96K,128K --seeds 3 --out runs/flash-curve
  tinyprune sweep --model digits-cnn --dataset digits --boards rpi-pico,stm32vldiscovery \\
      --min-accuracy 95% --executor ray --jobs 2 --out runs/ray
  tinyprune sweep ... --executor ray --ray-address auto --out runs/cluster   # after `ray start --head`
  tinyprune sweep ... --out runs/which-board --resume                       # after an interruption
"""

# deploy's options that a sweep spells differently (--boards, lists of sizes, its own cache
# default) or does not offer (Renode runs, a second copy of the report)

def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _size_list(what: str):
    from tinyprune.sizes import ACCEPTED, parse_size
    from tinyprune.errors import BadInput

    def parse(text: str) -> list[int]:
        parts = [p.strip() for p in text.split(",")]
        if not any(parts) or not all(parts):
            raise argparse.ArgumentTypeError(f"{what}: expected sizes separated by commas, such as 48K,96K")
        try:
            sizes = [parse_size(p, what=what) for p in parts]
        except BadInput as exc:
            raise argparse.ArgumentTypeError(f"{exc.message} (accepted: {ACCEPTED})") from None
        return list(dict.fromkeys(sizes))

    return parse


def _name_list(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",")]
    if not any(names) or not all(names):
        raise argparse.ArgumentTypeError("expected board names separated by commas, or `all`")
    return list(dict.fromkeys(names))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _deploy_options(parser: argparse.ArgumentParser) -> None:
    """deploy's search, convert and verify options, with deploy's spelling, defaults and help."""
    from tinyprune.commands.deploy import add_firmware_options, add_pipeline_options
    from tinyprune.commands.prune import add_search_options

    add_search_options(parser, seed_help="the first seed (default 0); --seeds N runs SEED .. SEED+N-1")
    add_firmware_options(add_pipeline_options(parser))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tinyprune.sweep_executors import EXECUTORS

    add_model_options(parser)
    g = parser.add_argument_group("grid")
    g.add_argument("--boards", required=True, type=_name_list, metavar="B1,B2,...|all",
                   help="boards to deploy to (see `tinyprune boards`), or `all`")
    add_boards_dir_option(g)
    g.add_argument("--flash", type=_size_list("--flash"), metavar="S1,S2,...",
                   help="flash budgets for model + runtime, e.g. 32K,64K (default: each board's own)")
    g.add_argument("--ram", type=_size_list("--ram"), metavar="S1,S2,...",
                   help="RAM budgets for arena + runtime + stack (default: each board's own)")
    g.add_argument("--seeds", type=_positive, default=1, metavar="N", help="seeds per point (default 1)")
    add_threshold_options(g, "accuracy the recommended board must reach on the target, 0.95 or 95%% "
                             "(default: the best point's less one point); classifiers",
                          "MSE the recommended board may not exceed (default: the best point's plus 10%%); "
                          "models scored by MSE, such as fc-autoencoder")
    e = parser.add_argument_group("execution")
    e.add_argument("--executor", choices=sorted(EXECUTORS), default="local",
                   help="local process pool (default) or Ray tasks")
    e.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (`auto`: the one `ray start` runs here); default: start a local one")
    e.add_argument("--jobs", type=_positive, metavar="N",
                   help="points run at once (default: the cores here; with --ray-address: the cluster's CPUs)")
    e.add_argument("--resume", action="store_true",
                   help="continue the sweep in DIR: skip the points that finished, run the rest")
    e.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="stage cache (default DIR/.tinyprune-cache; with --ray-address a directory on each worker, "
                        "default ~/.cache/tinyprune/stages)")
    e.add_argument("--no-cache", action="store_true", help="do not read or write the stage cache")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output directory: sweep.json/.csv/.md/.html, plots, points/ (see above)")
    parser.add_argument("--force", action="store_true",
                        help="start DIR over if it holds an earlier tinyprune output (its stage cache is kept)")
    _deploy_options(parser)


def _grid_label(sizes: list[int] | None) -> str:
    from tinyprune.sizes import format_size

    if not sizes:
        return "each board's own budget"
    return f"{len(sizes)} budget(s) ({', '.join(format_size(s) for s in sizes)})"


def _boards(args):
    from tinyprune.boards import list_boards, load_board

    if args.boards == ["all"]:
        return list_boards(args.boards_dir)
    return [load_board(name, args.boards_dir) for name in args.boards]


def _inputs(args, out: Path, shares_filesystem: bool, loaded, prune_cfg):
    """What every point shares, with the float model trained once, here (as deploy would);
    ``loaded``: load_inputs(args); ``prune_cfg``: prune_config_from_args(args)."""
    import io
    from dataclasses import asdict

    import torch

    from tinyprune.cache import DIR_NAME
    from tinyprune.commands.prune import prepare_weights
    from tinyprune.convert import ConvertConfig
    from tinyprune.firmware import OPTIMIZE_FLAGS
    from tinyprune.sweep import SweepInputs

    data, model, info, shape, task = loaded
    weights = prepare_weights(args, model, info, data, task, shape)
    name = info.zoo_name or Path(args.model.split(":")[0]).stem
    convert_cfg = ConvertConfig(calibration_samples=args.calibration_samples, seed=args.seed, name=name)
    buf = io.BytesIO()
    torch.save(model.eval(), buf)
    if args.no_cache:
        cache = None
    elif args.cache_dir:
        cache = str(args.cache_dir.resolve()) if shares_filesystem else str(args.cache_dir)
    else:
        cache = str((out / DIR_NAME).resolve()) if shares_filesystem else None
    source = Path(info.factory_file).read_bytes() if info.factory_file else None
    inputs = SweepInputs(buf.getvalue(), asdict(info), data, tuple(shape), task, asdict(prune_cfg),
                         asdict(convert_cfg), {"samples": args.limit, "max_attempts": args.max_attempts,
                                               "timeout_s": args.timeout, "target": args.target,
                                               "opt": OPTIMIZE_FLAGS[args.optimize],
                                               "profile": not args.no_profile},
                         weights, cache, use_cache=not args.no_cache, factory_source=source)
    return inputs


def run(args: argparse.Namespace) -> int:
    from tinyprune import progress, sweep_report
    from tinyprune.commands.prune import prune_config_from_args
    from tinyprune.commands.train import load_inputs
    from tinyprune.errors import BadInput, CheckFailed
    from tinyprune.report import new_report, to_json
    from tinyprune.sweep import SweepDir, error_row, expand_grid, point_spec
    from tinyprune.sweep_executors import EXECUTORS, execute
    from tinyprune.sweep_summary import rows_csv, summarise

    for name in ("calibration_samples", "limit", "max_attempts"):
        if getattr(args, name) < 1:
            raise BadInput(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.ray_address and args.executor != "ray":
        raise BadInput("--ray-address needs --executor ray")
    if args.resume and args.force:
        raise BadInput("--force and --resume contradict each other", hint="--resume continues DIR; --force starts over")
    jobs = args.jobs or (None if args.ray_address else _cores())
    executor = EXECUTORS[args.executor](jobs, args.ray_address)
    boards = _boards(args)
    seeds = [args.seed + i for i in range(args.seeds)]
    out = Path(args.out)
    points = expand_grid(boards, args.flash, args.ram, seeds, out)
    prune_cfg = prune_config_from_args(args)  # the same fields as `tinyprune deploy`, validated before any work
    loaded = load_inputs(args)  # dataset and model (not trained yet): they decide the metric
    threshold = metric_threshold(args, loaded[4])
    sweep_dir = SweepDir.prepare(out, args.force, args.resume)  # before training: a bad DIR fails at once
    start = time.monotonic()
    inputs = _inputs(args, out, executor.shares_filesystem, loaded, prune_cfg)
    fingerprint = inputs.fingerprint()
    specs = {p.id: point_spec(fingerprint, p) for p in points}
    done, stale = sweep_dir.finished(points, specs) if args.resume else ({}, [])
    todo = [p for p in points if p.id not in done]
    rows = {pid: d["row"] for pid, d in done.items()}
    runs = {pid: d["run"] | {"resumed": True} for pid, d in done.items()}  # timings: the `run` field
    print(f"Sweep of {args.model} on {inputs.data.name}: {len(boards)} board(s) x {_grid_label(args.flash)} flash x "
          f"{_grid_label(args.ram)} RAM x {len(seeds)} seed(s) = {len(points)} point(s)", flush=True)
    if args.resume:
        print(f"  --resume: {len(done)} finished point(s) skipped, {len(todo)} to run"
              + (f" ({len(stale)} recorded with other inputs are redone)" if stale else ""), flush=True)
    cache = inputs.cache_dir or ("off" if args.no_cache else "a directory on each worker")
    print(f"  executor: {executor.describe()}; stage cache: {cache}", flush=True)

    def document(complete: bool, interrupted: bool = False) -> dict:
        """sweep.json: everything but ``run`` is a function of the inputs, whichever executor ran them."""
        ordered = [rows[p.id] for p in points if p.id in rows]
        run = {"seconds": round(time.monotonic() - start, 1), "resumed": len(done), "cache_dir": inputs.cache_dir,
               "executor": {"name": executor.name, "jobs": executor.slots, "address": args.ray_address,
                            "description": executor.describe()},
               "points": {p.id: runs[p.id] for p in points if p.id in runs}}
        return new_report(
            "sweep", run=run, complete=complete, interrupted=interrupted, model=args.model,
            dataset=inputs.data.name, task=inputs.task, weights=inputs.weights,
            grid={"boards": [b.name for b in boards], "flash_bytes": args.flash, "ram_bytes": args.ram,
                  "seeds": seeds, "flash_label": _grid_label(args.flash), "ram_label": _grid_label(args.ram),
                  "points": [p.id for p in points]},
            config={"prune": inputs.prune, "convert": inputs.convert, "deploy": inputs.deploy},
            pending=[p.id for p in points if p.id not in rows], rows=ordered,
            summary=summarise(ordered, threshold))

    counts = {"failed": sum(r["status"] != "ok" for r in rows.values()), "running": 0}
    bar = progress.bar(total=len(points), desc="sweep", unit="point", leave=True)
    bar.update(len(done))

    def status(running: int) -> None:
        counts["running"] = running
        bar.set_postfix_str(f"running {running}, failed {counts['failed']}")

    def finished(point, outcome) -> None:
        if isinstance(outcome, dict):
            sweep_dir.record(point, outcome)
            row, runs[point.id] = outcome["row"], outcome["run"]
        else:  # the worker went away: recorded in sweep.json only, so --resume runs it again
            row = error_row(point, outcome, type(outcome).__name__) | {"opt_flag": inputs.opt_flag}
            sweep_dir.write(f"points/{point.id}.log", f"{row['error']}\n")
        rows[point.id] = row
        counts["failed"] += row["status"] != "ok"
        bar.update(1)
        seconds = runs.get(point.id, {}).get("seconds")
        bar.write(f"  [{len(rows)}/{len(points)}] {sweep_report.point_line(row, seconds)}")
        sweep_dir.write("sweep.json", to_json(document(complete=False)))

    sweep_dir.write("sweep.json", to_json(document(complete=False)))
    try:
        execute(executor, inputs, todo, specs, finished, status)
    except KeyboardInterrupt:
        bar.close()
        sweep_dir.write("sweep.json", to_json(document(complete=False, interrupted=True)))
        print(f"\nInterrupted: {len(rows)} of {len(points)} point(s) finished. Continue with the same command "
              "and --resume.", flush=True)
        raise
    bar.close()
    doc = document(complete=True)
    sweep_dir.write("sweep.json", to_json(doc))
    sweep_dir.write("sweep.csv", rows_csv(doc["rows"]))
    sweep_report.render(doc, out)
    print()
    for line in sweep_report.summary_lines(doc):
        print(line)
    print(f"\nReport: {out}/sweep.html (and sweep.md, sweep.json, sweep.csv); each point's deploy in {out}/points/")
    failed = doc["summary"]["failed"]
    if failed == len(points):
        raise CheckFailed(f"every point of the sweep failed ({failed}); see the errors above")
    if failed:
        print(f"{failed} of {len(points)} point(s) failed (listed above); the sweep itself completed.")
    return 0
