"""``tinyprune deploy --model M --dataset D --board B --out DIR``: one budget-driven command from a
model to verified firmware."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from tinyprune.commands._common import add_threshold_options, metric_threshold

HELP = "prune -> convert -> build -> verify in one budget-driven command"
DESCRIPTION = """\
The whole pipeline for one board: prune the model until its int8 form fits the board's budget
(skipped when it already fits), convert it to an int8 .tflite and TFLite Micro arrays, build
the firmware and run the test set on the board's emulated core (QEMU), bit-exact against
TFLite Micro on the host. If the firmware measured on the target is over the budget, the
pruning budget is tightened by the measured excess and the pipeline runs again (at most
--max-attempts times). Finished stages are cached by content hash (default
DIR/../.tinyprune-cache), so re-running after a failure does not redo them.

Budget: the board's flash_bytes - reserved_flash_bytes and ram_bytes - reserved_ram_bytes
(`tinyprune boards B`), or --flash/--ram. The firmware is linked with exactly that budget as
its memory regions, so it links only if it fits.

Writes DIR/ (atomically: a failed or interrupted run leaves no DIR):
  model_float.pt, model_pruned.pt, model.onnx, model_int8.tflite, model_int8_metadata.tflite
  model_data.h, model_data.cc, model_ops.h, model_io.h, tpr_ops.h, sample_input.h,
  board/ (linker script and CMake/Make fragments for --target: QEMU's addresses or the board's)
  firmware.elf, firmware.map (QEMU), firmware-hw.elf, <board>.resc, <board>.robot (Renode)
  report.json, report.md, report.html (self-contained), accuracy.png, memory.png,
  channels.png, search.png

Exit status 0 when the firmware fits and is bit-exact, 1 when a check failed, 2 for bad input
(including a budget no pruning of this architecture can reach: the message gives the smallest
reachable sizes). A bar for CI: --min-accuracy A (classifiers: the accuracy measured on the
target) or --max-mse E (autoencoders: the MSE of TFLite Micro's outputs, which the target
matched byte for byte); missing it exits 1 with DIR written, and report.json's quality_gate
says by how much.

Examples:
  tinyprune deploy --model mnist1d-cnn --dataset mnist1d --board nucleo-f446re --out runs/f446
  tinyprune deploy --model digits-cnn --dataset digits --board stm32vldiscovery --out runs/vl
  tinyprune deploy --model digits-cnn --dataset digits --board rpi-pico --min-accuracy 95% --out runs/ci
  tinyprune deploy --model net.py:build --weights net.pt --dataset data.npz --board nrf52840dk \\
      --flash 128K --ram 32K --round-to 4 --out runs/nrf
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tinyprune.commands import prune

    prune.add_arguments(parser)  # model, board, budget, search, output options: the same spelling
    g = add_pipeline_options(parser)
    g.add_argument("--emulator", choices=("qemu", "renode"), default="qemu",
                   help="qemu (default); renode also runs the generated Robot test when renode-test is on PATH")
    add_firmware_options(g)
    add_threshold_options(g, "fail (exit 1, DIR still written) when the accuracy on the target is below A, "
                             "0.95 or 95%%; classifiers",
                          "fail (exit 1, DIR still written) when the MSE, as the target computes it bit-exactly, is "
                          "above E; models scored by MSE, such as fc-autoencoder")
    g.add_argument("--cache-dir", type=Path, metavar="DIR", help="stage cache (default DIR/../.tinyprune-cache)")
    g.add_argument("--no-cache", action="store_true", help="do not read or write the stage cache")


def add_firmware_options(group) -> None:
    """--optimize and --target, shared by deploy and sweep."""
    from tinyprune.commands._target import add_optimize_option
    from tinyprune.integration import TARGETS

    add_optimize_option(group)
    group.add_argument("--target", choices=TARGETS, default="qemu",
                       help="what DIR/board/ links for: qemu (default; the board's QEMU machine's addresses, "
                            "semihosting, so the example runs under qemu-system-arm) or hardware (the board's own "
                            "flash and RAM addresses, output over its UART)")


def add_pipeline_options(parser: argparse.ArgumentParser):
    """Convert and verify options shared by deploy and sweep; returns the group for more."""
    g = parser.add_argument_group("convert and verify")
    g.add_argument("--calibration-samples", type=int, default=300, metavar="N",
                   help="representative samples for int8 calibration (default 300)")
    g.add_argument("--limit", type=int, default=200, metavar="N",
                   help="test samples run on the emulated board (default 200)")
    g.add_argument("--timeout", type=float, metavar="SECONDS", help="kill the emulator after this long")
    g.add_argument("--max-attempts", type=int, default=3, metavar="N",
                   help="prune/convert/verify rounds when the measured firmware misses the budget (default 3)")
    g.add_argument("--no-profile", action="store_true",
                   help="do not time each operator on the target (the report's By operator table; saves a second "
                        "firmware build and emulator run)")
    return g


def run(args: argparse.Namespace) -> int:
    from tinyprune import deploy_report, renode
    from tinyprune.cache import DIR_NAME, StageCache
    from tinyprune.commands.prune import budget_from_args, prepare_weights, prune_config_from_args
    from tinyprune.commands.train import load_inputs
    from tinyprune.convert import ConvertConfig
    from tinyprune.deploy import DeployConfig, board_with_budget, deploy, pruning_budget
    from tinyprune.errors import BadInput, CheckFailed, ToolMissing
    from tinyprune.firmware import OPTIMIZE_FLAGS
    from tinyprune.integration import user_build_lines
    from tinyprune.outdir import check_output_dir, staged_output, write_file_atomic, write_files
    from tinyprune.prune import check_budget
    from tinyprune.quality import gate, metric_on_target
    from tinyprune.report import to_json, write_report

    if not args.board:
        raise BadInput("deploy needs --board NAME (the board to build and verify for)",
                       hint="see `tinyprune boards`; --flash/--ram may override its budget")
    for name in ("calibration_samples", "limit", "max_attempts"):
        if getattr(args, name) < 1:
            raise BadInput(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.timeout is not None and not 0 < args.timeout < float("inf"):
        raise BadInput(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if args.emulator == "renode" and not renode.renode_available():
        raise ToolMissing("--emulator renode needs renode-test on PATH", hint=renode.RENODE_INSTALL_HINT)
    prune_cfg = prune_config_from_args(args)
    budget, board = budget_from_args(args)
    check_output_dir(args.out, args.force)
    data, model, info, shape, task = load_inputs(args)
    threshold = metric_threshold(args, task)
    name = info.zoo_name or Path(args.model.split(":")[0]).stem
    cfg = DeployConfig(prune=prune_cfg,
                       convert=ConvertConfig(calibration_samples=args.calibration_samples, seed=args.seed, name=name),
                       samples=args.limit, max_attempts=args.max_attempts, timeout_s=args.timeout,
                       target=args.target, opt=OPTIMIZE_FLAGS[args.optimize], profile=not args.no_profile)
    cache_root = None if args.no_cache else (args.cache_dir or Path(args.out).resolve().parent / DIR_NAME)
    cache = StageCache(cache_root)
    print(f"Deploying {args.model} to {board.name} ({board.mcu}, {board.core}): budget flash "
          f"{budget.flash_bytes} B, RAM {budget.ram_bytes} B ({budget.source})", flush=True)
    start = time.monotonic()
    board_with_budget(board, budget.flash_bytes, budget.ram_bytes)  # --flash/--ram within the board
    check_budget(model, shape, pruning_budget(budget, cfg.opt), prune_cfg, core=board.core)  # before training anything
    weights = prepare_weights(args, model, info, data, task, shape)
    with staged_output(args.out, args.force) as tmp:
        outcome = deploy(model, info, data, shape, task, board, budget, cfg, cache, tmp / ".work",
                         say=lambda text: print(f"  ... {text}", flush=True))
        shutil.rmtree(tmp / ".work", ignore_errors=True)
        report = outcome.report | {"weights": weights, "cache_dir": str(cache_root) if cache_root else None,
                                   "integration": user_build_lines(Path(args.out).resolve())}
        report["run"]["seconds"] = round(time.monotonic() - start, 1)
        if threshold is not None:
            report["quality_gate"] = gate(report["metric"], metric_on_target(report), threshold)
        write_files(tmp, outcome.files)
        write_report(tmp / "report.json", report)
        deploy_report.render(report, tmp)
        if args.emulator == "renode":
            robot = report["verify"].get("hardware", {}).get("robot")
            if robot:
                renode.run_robot(tmp / robot)
    if args.json_file:
        write_file_atomic(args.json_file, to_json(report))
    print()
    for line in deploy_report.summary_lines(report):
        print(line)
    print(f"\nReport: {args.out}/report.html (and report.md, report.json)")
    lines = report["integration"]
    print("\nTo use the model in your firmware build, add:")
    for line in lines.get("cmake", []):
        print(f"  CMake:  {line}")
    for line in lines.get("make", []):
        print(f"  Make:   {line}")
    print("board/ links at the board's own addresses (--target hardware)." if args.target == "hardware" else
          "board/ links at the QEMU machine's addresses; --target hardware links at the board's own.")
    if not outcome.fits or not outcome.bit_exact:
        raise CheckFailed("the deployed firmware failed a check (see the summary above)")
    if threshold is not None and not report["quality_gate"]["passed"]:
        raise CheckFailed(f"the deployed model misses its bar: {report['quality_gate']['text']}",
                          hint=f"{args.out} is written; a larger budget or more --finetune-epochs keep more of the model")
    return 0
