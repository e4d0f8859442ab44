"""What `tinyprune build` and `tinyprune verify` share: reading a .tflite, picking samples,
printing the measured figures."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tinyprune.errors import BadInput
from tinyprune.sizes import format_size


def add_samples_options(parser: argparse.ArgumentParser, default_limit: int = 200) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--dataset", metavar="D", help="test samples from this dataset (digits, mnist1d or a .npz)")
    group.add_argument("--random", type=positive_int, metavar="N", help="N random int8 inputs (no dataset needed)")
    parser.add_argument("--limit", type=positive_int, default=default_limit, metavar="N",
                        help=f"use at most N test samples of --dataset (default {default_limit})")
    parser.add_argument("--seed", type=int, default=0, help="seed for --random inputs (default 0)")


def add_optimize_option(parser) -> None:
    from tinyprune.firmware import OPTIMIZE_FLAGS

    parser.add_argument("--optimize", choices=tuple(OPTIMIZE_FLAGS), default="size",
                        help="size (-Os, default: the smallest flash and arena), balanced (-Os with the fast "
                             "convolution kernels and the fast arena where RAM allows: on Cortex-M4 ds-cnn "
                             "2.5 instructions/MAC instead of 3.7, for about 2 KB more code and 3 KB more "
                             "arena) or speed (-O2 and the fast arena: 2.2, for about 5 KB more code)")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def read_tflite(path: Path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"model file {path} does not exist")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise BadInput(f"{path} is not a TFLite model (no 'TFL3' identifier)",
                       hint="give the model_int8.tflite that `tinyprune convert` wrote, or any int8 .tflite")
    from tinyprune.tflite_info import read_model

    try:  # parse once here, so that a malformed file is reported with its name
        read_model(data)
    except BadInput as exc:
        message = exc.message
        try:  # the firmware's bounds-checked reader says what is wrong more plainly
            from tinyprune import runtime

            status, detail = runtime.check_model(data)
            if status != "TPR_OK":
                message = f"the micro runtime rejects the model: {detail}"
        except Exception:  # no host compiler: keep the Python parser's message
            pass
        raise BadInput(f"{path}: {message}", hint="run `tinyprune inspect` on it for the details") from None
    return data


def pick_samples(model: bytes, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(inputs in the model's dtype and layout, labels or None, a description)."""
    from tinyprune.samples import model_inputs, random_inputs
    from tinyprune.tflite_info import read_model

    tensor = read_model(model).inputs[0]
    if args.dataset:
        from tinyprune.data import load_dataset

        data = load_dataset(args.dataset)
        n = min(args.limit, len(data.x_test))
        return model_inputs(data.x_test[:n], tensor), data.y_test[:n], f"{n} test samples of {data.name}"
    n = args.random or args.limit
    return random_inputs(tensor, n, seed=args.seed), None, f"{n} random inputs (seed {args.seed})"


def size_lines(r: dict) -> list[tuple[str, str]]:
    def both(used: int, budget: int) -> str:
        return f"{used} B ({format_size(used)}) of {budget} B budget ({100 * used / budget:.1f} %)"

    return [
        ("flash", both(r["flash_bytes"], r["flash_budget_bytes"])),
        ("  model", f"{r['model_bytes']} B"),
        ("  runtime code", f"{r['runtime_code_bytes']} B"),
        ("RAM", both(r["ram_bytes"], r["ram_budget_bytes"])),
        ("  arena", f"{r['arena_bytes']} B" + (
            f" (the fast arena: multipliers computed once; the smallest is {r['arena_min_bytes']} B)"
            if r.get("multipliers_in_arena") else "")),
    ]


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")
