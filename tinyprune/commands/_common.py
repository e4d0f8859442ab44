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
