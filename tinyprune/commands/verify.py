"""``tinyprune verify MODEL.tflite --board B``: run the model on the board's emulated core."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from tinyprune.commands._common import accuracy_type, add_board_options, add_json_option
from tinyprune.commands._target import (add_optimize_option, add_samples_options, pick_samples, print_table,
                                        read_tflite, size_lines)
from tinyprune.firmware import OPTIMIZE_FLAGS

HELP = "run a .tflite on an emulated board and check it against the host"
DESCRIPTION = """\
Build firmware for the board around MODEL.tflite, run it on the emulated core of that board
(QEMU by default) and check it:

  * every output byte equals TensorFlow Lite Micro's on the host for the same input (bit-exact);
  * accuracy, recomputed from the outputs the target produced (with --dataset);
  * flash and RAM against the board's budget (arm-none-eabi-size + map file), arena, the
    stack's high-water mark, and instructions per inference (SysTick under qemu -icount:
    instructions, not cycles; the latency at the board's clock is an estimate).

--profile also times every operator (instructions per inference, per MAC, share of the total)
in a second build whose runtime calls a hook at each operator boundary, on a few samples.

Exit status 0 when bit-exact and within budget (and, with --min-accuracy, accurate enough),
1 when the model ran but a check failed, 2 for bad input. Works for any int8 .tflite: use
--random N when you have no dataset.

Examples:
  tinyprune verify out/model_int8.tflite --board nucleo-f446re --dataset digits
  tinyprune verify model.tflite --board rpi-pico --random 100 --json verify.json
  tinyprune verify model.tflite --board nrf52840dk --dataset digits --emulator renode
  tinyprune verify model.tflite --board nucleo-f446re --random 8 --optimize speed --profile
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL.tflite")
    add_board_options(parser, required=True)
    add_samples_options(parser)
    parser.add_argument("--emulator", choices=("qemu", "renode"), default="qemu",
                        help="qemu (default, always available) or renode (needs renode-test on PATH)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="kill the emulator after this long (default: from the model's MACs)")
    add_optimize_option(parser)
    parser.add_argument("--profile", action="store_true",
                        help="also time each operator (a second, profiling build; QEMU only); report key 'profile'")
    parser.add_argument("--min-accuracy", type=accuracy_type, metavar="A",
                        help="fail (exit 1) when the accuracy on the target is below A, 0.95 or 95%%; needs --dataset "
                             "and a classifier")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the firmware (ELF, map, harness sources) in DIR (a new directory)")
    parser.add_argument("--force", action="store_true",
                        help="replace the --keep DIR if it holds an earlier tinyprune output")
    add_json_option(parser)


def run(args: argparse.Namespace) -> int:
    from tinyprune.boards import load_board
    from tinyprune.errors import BadInput, CheckFailed
    from tinyprune.outdir import check_output_dir, staged_output
    from tinyprune.report import new_report, write_report
    from tinyprune.quality import gate
    from tinyprune.verify import verify_model

    if args.timeout is not None and not 0 < args.timeout < float("inf"):
        raise BadInput(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if args.keep is not None:
        check_output_dir(args.keep, args.force)
    board = load_board(args.board, args.boards_dir)
    model = read_tflite(args.model)
    if args.emulator == "renode":
        if args.min_accuracy is not None:
            raise BadInput("--min-accuracy checks the QEMU run's accuracy; the Renode test checks its own outputs",
                           hint="drop --emulator renode, or --min-accuracy")
        if args.profile:
            raise BadInput("--profile times operators under QEMU -icount; Renode runs the plain firmware",
                           hint="drop --emulator renode, or --profile")
        return run_renode(model, board, args)
    inputs, labels, described = pick_samples(model, args)
    if args.min_accuracy is not None:
        _check_accuracy_bar(model, labels)
    print(f"Verifying {args.model} on {board.name} ({board.core}) in QEMU {board.qemu_machine} with {described}")
    with tempfile.TemporaryDirectory(prefix="tinyprune-verify-") as tmp:
        result = verify_model(model, board, inputs, labels, Path(tmp), timeout_s=args.timeout,
                              progress=lambda text: print(f"  ... {text}", flush=True),
                              opt=OPTIMIZE_FLAGS[args.optimize], profile=args.profile)
        if args.keep:
            with staged_output(args.keep, args.force) as keep:  # never into a directory of the user's
                shutil.copytree(tmp, keep, dirs_exist_ok=True)
    report = new_report("verify", model=str(args.model), samples_from=described, **result.to_dict())
    if args.min_accuracy is not None:
        report["quality_gate"] = gate("accuracy", result.accuracy, args.min_accuracy)
    for key in ("elf", "map_file"):  # where the files are now: in --keep, or gone with the temporary dir
        report[key] = str(args.keep / Path(report[key]).relative_to(tmp)) if args.keep else None
    json_path = args.json_file or Path("verify_report.json")
    write_report(json_path, report)
    print_summary(report)
    if report.get("profile"):
        print_profile(report["profile"])
    print(f"Report: {json_path}")
    if not result.bit_exact:
        raise CheckFailed(f"{result.mismatches} of {result.samples} outputs differ from TFLite Micro's")
    if not result.fits:
        raise CheckFailed(f"the firmware does not fit {board.name}'s budget (see the sizes above)")
    if args.min_accuracy is not None and not report["quality_gate"]["passed"]:
        raise CheckFailed(f"the model misses its bar on the target: {report['quality_gate']['text']}")
    return 0


def _check_accuracy_bar(model: bytes, labels) -> None:
    """--min-accuracy needs labelled samples and one score per class."""
    from tinyprune.errors import BadInput
    from tinyprune.tflite_info import read_model

    if labels is None:
        raise BadInput("--min-accuracy needs labelled samples: give --dataset D (not --random)")
    shape = read_model(model).outputs[0].shape
    if not shape or shape[-1] < 2:
        raise BadInput(f"--min-accuracy needs a classifier, one output per class; this model's output has shape "
                       f"{tuple(shape)}")


def print_summary(r: dict) -> None:
    acc = "n/a (no labels)" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f} % on target, " \
          f"{100 * r['host_accuracy']:.2f} % in TFLite Micro on the host"
    ipm = f"{r['instructions_per_mac']:.2f}" if r["instructions_per_mac"] else "n/a"
    rows = [
        ("board", f"{r['board']} ({r['core']}), emulated on {r['emulator']} {r['machine']}"),
        ("bit-exact", f"{'yes' if r['bit_exact'] else 'NO'}: {r['samples'] - r['mismatches']} of {r['samples']} "
                      f"outputs equal TFLite Micro's"),
        ("accuracy", acc),
        *size_lines(r),
        ("  TFLM arena", f"{r['tflm_arena_bytes']} B on this 64-bit host, ~{r['tflm_arena_bytes_32bit_estimate']} B "
                         f"estimated on a 32-bit core"),
        ("stack used", f"{r['stack_bytes']} B of {r['stack_reserved_bytes']} B reserved"),
        ("instructions", f"{r['instructions_per_inference']:,.0f} per inference, {r['macs_per_inference']:,} MACs, "
                         f"{ipm} instructions/MAC"),
        ("init", f"{r.get('init_instructions', 0):,.0f} instructions, once (tpr_init: the model's checks and "
                 f"the arena plan)"),
        ("latency", f"~{r['estimated_latency_ms']:.2f} ms at the board's clock (estimate from instruction "
                    f"counts; QEMU models no cycles)"),
        ("fits", "yes" if r["fits"] else "NO"),
    ]
    if r.get("quality_gate"):
        from tinyprune.quality import gate_line

        rows.append(("bar", gate_line(r["quality_gate"])))
    if r.get("opt_flag"):
        name = next((k for k, v in OPTIMIZE_FLAGS.items() if v == r["opt_flag"]), None)
        rows.insert(1, ("compiled", r["opt_flag"] + (f" (--optimize {name})" if name else "")))
    print_table(rows)


def print_profile(rows: list[dict]) -> None:
    """The profile as a table, in graph order, the costliest operators marked."""
    top = {r["index"] for r in sorted(rows, key=lambda r: -r["instructions"])[:3]}
    print("Per operator (profiling build; instructions per inference):")
    print(f"  {'#':>3}  {'operator':<20} {'MACs':>11} {'instructions':>13} {'per MAC':>8} {'share':>7}")
    for r in rows:
        ipm = f"{r['instructions_per_mac']:.2f}" if r["instructions_per_mac"] is not None else "-"
        print(f"  {r['index']:>3}  {r['op']:<20} {r['macs']:>11,} {r['instructions']:>13,.0f} {ipm:>8} "
              f"{100 * r['share']:>6.1f}%{'  *' if r['index'] in top else ''}")
    print("  * the three costliest; the hook's own instructions (a few dozen per operator) are included")


def run_renode(model: bytes, board, args) -> int:
    from tinyprune import renode
    from tinyprune.verify import build_hardware
    from tinyprune.errors import ToolMissing

    if not renode.renode_available():
        raise ToolMissing("--emulator renode needs renode-test on PATH", hint=renode.RENODE_INSTALL_HINT)
    out = args.keep or Path(tempfile.mkdtemp(prefix="tinyprune-renode-"))
    out.mkdir(parents=True, exist_ok=True)
    inputs, labels, described = pick_samples(model, args)
    hw = build_hardware(model, board, inputs, labels, described, out, out / ".build",
                        opt=OPTIMIZE_FLAGS[args.optimize])
    renode.run_robot(out / hw["robot"])
    print(f"Renode: {board.name} printed the expected outputs digest {hw['expected_digest']} "
          f"({hw['samples']}); scripts in {out}")
    return 0
