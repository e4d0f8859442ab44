"""``tinyprune arrays MODEL.tflite --out DIR``: the C/C++ files a firmware needs, for any .tflite."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyprune.commands._common import add_json_option, add_output_options

HELP = "any .tflite -> model_data.h/.cc, op resolver and arena size"
DESCRIPTION = """\
Turn any .tflite (from `tinyprune convert` or from elsewhere) into the files a firmware build
compiles, and measure the arena it needs:

  DIR/model_data.h, model_data.cc   const unsigned char g_model_data[] (16-byte aligned, in flash)
                                    and g_model_data_len; valid C99 and C++11
  DIR/model_ops.h                   the operators used: a plain list, a TFLite Micro
                                    MicroMutableOpResolver<N> with exactly those, and the
                                    tinyprune runtime's per-model operator selection
  DIR/model_io.h                    input/output shapes, types, scales, zero points; arena sizes
  DIR/arrays_report.json            model_bytes, ops, tflm_arena_bytes, tpr_arena_bytes,
                                    tpr_arena_bytes_fast, ...

Arena sizes: TFLite Micro's is measured with its real interpreter (the `tflite_micro`
package: the smallest arena that allocates and runs, on this 64-bit host) and estimated for a
32-bit core, plus TFLM's 16-byte alignment margin; the tinyprune runtime's is exact, the
smallest (MODEL_TPR_ARENA_BYTES) and the fast one (MODEL_TPR_ARENA_BYTES_FAST: tpr_init then
keeps the convolutions' multipliers in the arena instead of tpr_invoke computing them again).

Examples:
  tinyprune arrays out/model_int8.tflite --out firmware/model
  tinyprune arrays person_detect.tflite --out gen --symbol g_person_model --json arrays.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL.tflite")
    parser.add_argument("--symbol", default="g_model_data", metavar="NAME",
                        help="C name of the array (default g_model_data; its length is NAME_len)")
    add_output_options(parser)
    add_json_option(parser)


def run(args: argparse.Namespace) -> int:
    from tinyprune.arrays import make_arrays
    from tinyprune.commands._target import read_tflite
    from tinyprune.outdir import check_output_dir, staged_output, write_file_atomic, write_files
    from tinyprune.report import new_report, to_json, write_report
    from tinyprune.tflite_info import read_model

    check_output_dir(args.out, args.force)
    model = read_tflite(args.model)
    info = read_model(model)
    print(f"{args.model}: {len(model)} bytes, {len(info.operators)} operators ({', '.join(info.op_names)}); "
          "measuring the TFLite Micro arena ...", flush=True)
    arrays = make_arrays(model, symbol=args.symbol, source_name=Path(args.model).name)
    report = new_report("arrays", model=str(args.model), **arrays_report_fields(arrays, info))
    with staged_output(args.out, args.force) as tmp:
        write_files(tmp, arrays.files)
        write_report(tmp / "arrays_report.json", report)
    if args.json_file:
        write_file_atomic(args.json_file, to_json(report))
    print(summary(report))
    print(f"Wrote {', '.join(sorted(arrays.files))} and arrays_report.json to {args.out}")
    return 0


def arrays_report_fields(arrays, info) -> dict:
    a = arrays.arena
    return {
        "model_bytes": arrays.model_bytes,
        "has_metadata": info.has_metadata,
        "ops": list(arrays.ops),
        "unsupported_ops": list(arrays.unsupported_ops),
        "tflm_arena_bytes": a.tflm_recommended_bytes,
        "tflm_arena_bytes_32bit_estimate": a.tflm_32bit_bytes,
        "tflm_arena_bytes_host64": a.tflm_host_bytes,
        "tpr_arena_bytes": a.tpr_bytes,
        "tpr_arena_bytes_fast": a.tpr_fast_bytes,
        "inputs": list(arrays.inputs),
        "outputs": list(arrays.outputs),
        "macs": info.macs,
        "files": sorted(arrays.files),
    }


def summary(r: dict) -> str:
    tpr = (f"{r['tpr_arena_bytes']} B ({r['tpr_arena_bytes_fast']} B with the multipliers kept in it: "
           f"MODEL_TPR_ARENA_BYTES_FAST)" if r["tpr_arena_bytes"] is not None
           else f"n/a (unsupported: {', '.join(r['unsupported_ops'])})")
    lines = [
        "",
        f"  model            {r['model_bytes']} B{' (includes metadata: use the copy without it in firmware)' if r['has_metadata'] else ''}",
        f"  operators        {len(r['ops'])}: {', '.join(r['ops'])}",
        f"  TFLM arena       {r['tflm_arena_bytes']} B to allocate on a 32-bit core (estimate; "
        f"{r['tflm_arena_bytes_host64']} B measured on this 64-bit host)",
        f"  tinyprune arena  {tpr}",
    ]
    for kind in ("inputs", "outputs"):
        for t in r[kind]:
            lines.append(f"  {kind[:-1]:<16} {t['dtype']}{t['shape']} scale {t['scale']} zero point {t['zero_point']}")
    return "\n".join(lines)
