"""Options shared by several subcommands, so every stage spells them the same way."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tinyprune.errors import BadInput
from tinyprune.sizes import ACCEPTED, parse_size


def size_type(what: str):
    """argparse ``type=`` for byte sizes; a bad value is an argparse error (exit 2)."""

    def parse(text: str) -> int:
        try:
            return parse_size(text, what=what)
        except BadInput as exc:
            raise argparse.ArgumentTypeError(f"{exc.message} (accepted: {ACCEPTED})") from None

    return parse


def accuracy_type(text: str) -> float:
    """argparse ``type=`` for an accuracy: 0.95 or 95%."""
    value = text.strip()
    try:
        number = float(value.rstrip("% "))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an accuracy such as 0.95 or 95%, got {text!r}") from None
    if value.endswith("%"):
        number /= 100
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"an accuracy is between 0 and 1 (or 0% and 100%), got {text!r}")
    return number


def error_type(text: str) -> float:
    """argparse ``type=`` for an error such as an MSE: a finite number, 0 or more."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an error such as 0.05, got {text!r}") from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"an error is a finite number, 0 or more, got {text!r}")
    return number


def add_threshold_options(parser, accuracy_help: str, mse_help: str) -> None:
    """--min-accuracy (classifiers) and --max-mse (autoencoders): the bar for the model's metric."""
    parser.add_argument("--min-accuracy", type=accuracy_type, metavar="A", help=accuracy_help)
    parser.add_argument("--max-mse", type=error_type, metavar="E", help=mse_help)


def metric_threshold(args: argparse.Namespace, task: str) -> float | None:
    """--min-accuracy or --max-mse, whichever the model's metric takes; the other is bad input."""
    from tinyprune.quality import THRESHOLD_OPTIONS
    from tinyprune.train import METRICS

    metric = METRICS[task]
    given = {"accuracy": args.min_accuracy, "mse": args.max_mse}
    for other, value in given.items():
        if value is not None and other != metric:
            raise BadInput(f"{THRESHOLD_OPTIONS[other]} does not apply: {args.model} is scored by {metric}",
                           hint=f"use {THRESHOLD_OPTIONS[metric]} instead")
    return given[metric]


def add_board_options(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--board", required=required, metavar="NAME", help="target board (see `tinyprune boards`)")
    add_boards_dir_option(parser)


def add_boards_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--boards-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="extra directory of board .toml files, searched first (repeatable; also $TINYPRUNE_BOARDS)",
    )


def add_budget_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flash", type=size_type("--flash"), metavar="SIZE", help="flash budget for model + runtime, e.g. 256K")
    parser.add_argument("--ram", type=size_type("--ram"), metavar="SIZE", help="RAM budget for arena + runtime + stack, e.g. 64K")


def add_output_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--out", type=Path, required=required, metavar="DIR", help="output directory (written atomically)")
    parser.add_argument(
        "--force", action="store_true", help="replace DIR if it holds an earlier tinyprune output"
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", dest="json_file", type=Path, metavar="FILE", help="also write the report to FILE")


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))
