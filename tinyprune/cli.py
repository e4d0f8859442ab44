"""The ``tinyprune`` command: one subcommand per pipeline stage.

This is the only module that prints errors or picks exit codes. Each subcommand lives in
``tinyprune/commands/<name>.py`` and provides ``HELP``, ``DESCRIPTION``, ``add_arguments(parser)``
and ``run(args) -> int``; adding a stage means adding a file and a line to ``COMMANDS``.
Command modules import heavy libraries (torch, TensorFlow) inside ``run`` so that ``--help``
and ``tinyprune boards`` stay instant.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import importlib.util
import os
import re
import signal
import sys

from tinyprune import __version__
from tinyprune.errors import TinypruneError

# name -> one-line summary (shown in `tinyprune --help` even before the module exists)
COMMANDS: dict[str, str] = {
    "boards": "list the boards tinyprune knows, or show one in full",
    "train": "train a model-zoo network on a dataset",
    "prune": "prune whole channels until the int8 model fits a flash/RAM budget",
    "convert": "torch/ONNX model -> int8 TFLite + TFLite Micro C arrays",
    "arrays": "any .tflite -> model_data.h/.cc, op resolver and arena size",
    "inspect": "validate a .tflite with the firmware's reader and show its plan",
    "build": "build firmware for a board around a .tflite",
    "verify": "run a .tflite on an emulated board and check it against the host",
    "deploy": "prune -> convert -> build -> verify in one budget-driven command",
    "sweep": "many deploys across boards, budgets and seeds",
    "doctor": "check the cross compiler and QEMU by running a tiny firmware",
}

ROOT_DESCRIPTION = """\
Fit a PyTorch model onto a microcontroller, and prove that it fits.

A model, a dataset and a board go in; a structurally pruned, int8-quantized model
that fits the board's flash and RAM comes out as TensorFlow Lite Micro C arrays,
plus firmware that ran on an emulated copy of the board.

Every stage is a subcommand that reads the previous stage's files, so you can
enter anywhere. A first session:

  tinyprune boards                          # what can I target?
  tinyprune boards nucleo-f446re            # one board's flash, RAM, emulator
  tinyprune deploy --model mnist1d-cnn --dataset mnist1d --board nucleo-f446re --out out/

Sizes accept 65536, 64K, 64KB, 64KiB, 1M, 1MiB (binary multiples).
Exit codes: 0 success, 1 ran but a check failed, 2 bad input.
"""


class _Parser(argparse.ArgumentParser):
    """argparse that shows the whole help on a bad subcommand, and exits 2 like the rest."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "-5K" after --flash is a (bad) value, not an unknown option: the size check then says
        # what is wrong with it (argparse only takes plain negative numbers as values)
        self._negative_number_matcher = re.compile(r"^-\d[\w.]*$")

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.stderr.write(f"Run `{self.prog} --help` for the options.\n")
        raise SystemExit(2)


def _command_module(name: str):
    module_name = f"tinyprune.commands.{name}"
    if importlib.util.find_spec(module_name) is None:
        return None
    return importlib.import_module(module_name)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tinyprune",
        description=ROOT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tinyprune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, summary in COMMANDS.items():
        module = _command_module(name)
        if module is None:
            p = sub.add_parser(name, help=f"{summary} (not yet available)", description=f"{summary}.\n\nNot yet available in this version.")
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(_run=_not_available(name))
            continue
        p = sub.add_parser(
            name,
            help=summary,
            description=getattr(module, "DESCRIPTION", summary),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _not_available(name: str):
    def run(args: argparse.Namespace) -> int:
        print(f"tinyprune {name}: not yet available in this version of tinyprune.", file=sys.stderr)
        return 2

    return run


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        if getattr(args, "json_file", None) is not None:  # --json FILE: refuse before the work, not after
            from tinyprune.outdir import check_file_target

            check_file_target(args.json_file)
        return int(args._run(args) or 0)
    except TinypruneError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        # the work's own cleanups (temporary directories, the emulator) ran while the exception
        # unwound; a second Ctrl-C while Python shuts down must not turn exit 130 into a signal death
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tinyprune boards | head` closes our stdout early
        return 0


def console_main() -> None:
    """The `tinyprune` command and `python -m tinyprune`: main(), then exit with its status."""
    code = main()
    if code == 130:
        # Interrupted, and the work's cleanups already ran while KeyboardInterrupt unwound. Run
        # the exit handlers (TensorFlow's autograph removes its temporary files there, tempfile's
        # finalizers run there), then skip the rest of the interpreter's shutdown: CPython ends it
        # by killing itself with SIGINT when a KeyboardInterrupt escaped code that an extension
        # ran through PyRun (a flag never reset), which would turn exit status 130 into a death
        # by signal.
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)
