"""``tinyprune build MODEL.tflite --board B --out DIR``: the firmware, without running it."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from tinyprune.commands._common import add_board_options, add_output_options
from tinyprune.commands._target import (add_optimize_option, add_samples_options, pick_samples, print_table,
                                        read_tflite, size_lines)
from tinyprune.firmware import OPTIMIZE_FLAGS

HELP = "build firmware for a board around a .tflite"
DESCRIPTION = """\
Build the verification firmware for a board around a .tflite model: the micro runtime
(only the operators the model uses), the model array in flash, a static arena sized by the
runtime's planner, startup code and a linker script whose regions are the board's flash and
RAM budget. If it links, it fits; if not, the error says by how many bytes.

By default the image is linked for the board's QEMU machine (semihosting harness, what
`tinyprune verify` runs). With --hardware it is linked at the board's own addresses with test
samples compiled in, prints its results over the board's UART, and comes with a Renode
script (.resc) and Robot Framework test (.robot).

Writes DIR/firmware.elf, DIR/firmware.map, DIR/build_report.json (and with --hardware
DIR/firmware-hw.elf, DIR/<board>.resc, DIR/<board>.robot).

Examples:
  tinyprune build model_int8.tflite --board nucleo-f446re --out fw/
  tinyprune build model_int8.tflite --board nrf52840dk --hardware --dataset digits --limit 10 --out fw/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL.tflite")
    add_board_options(parser, required=True)
    add_output_options(parser)
    parser.add_argument("--hardware", action="store_true",
                        help="also build for the real board / Renode (UART output, embedded samples)")
    add_optimize_option(parser)
    add_samples_options(parser, default_limit=10)


def run(args: argparse.Namespace) -> int:
    from tinyprune.boards import load_board
    from tinyprune.outdir import check_output_dir, staged_output
    from tinyprune.report import new_report, write_report
    from tinyprune.verify import build_hardware, build_harness

    board = load_board(args.board, args.boards_dir)
    model = read_tflite(args.model)
    check_output_dir(args.out, args.force)
    with staged_output(args.out, args.force) as tmp:
        work = tmp / ".build"
        opt = OPTIMIZE_FLAGS[args.optimize]
        hb = build_harness(model, board, work, opt=opt)
        shutil.copy(hb.build.elf, tmp / "firmware.elf")
        shutil.copy(hb.build.map_file, tmp / "firmware.map")
        report = new_report("build", board=board.name, core=board.core, model=str(args.model),
                            qemu_machine=board.qemu_machine, optimize=args.optimize, opt_flag=opt,
                            arena_bytes=hb.arena_bytes, arena_min_bytes=hb.arena_min_bytes,
                            multipliers_in_arena=hb.multipliers_in_arena, ops=hb.ops, **hb.sizes)
        if args.hardware:
            inputs, labels, described = pick_samples(model, args)
            report["hardware"] = build_hardware(model, board, inputs, labels, described, tmp, work, opt=opt)
        shutil.rmtree(work)
        write_report(tmp / "build_report.json", report)
    print(f"Built firmware for {board.name} ({board.core}, QEMU {board.qemu_machine}, {report['opt_flag']}): it fits.")
    print_table(size_lines(report))
    print(f"Wrote {args.out}/firmware.elf, firmware.map, build_report.json"
          + (f", firmware-hw.elf, {board.name}.resc, {board.name}.robot" if args.hardware else ""))
    return 0
