"""The deploy pipeline: prune -> convert -> build -> verify for one board, budget-driven.

    from tinyprune.deploy import DeployConfig, deploy
    outcome = deploy(model, info, data, shape, task, board, budget, DeployConfig(), cache, say=print)
    outcome.fits, outcome.report, outcome.files

Each stage's result is cached by content hash (``tinyprune.cache``): the same float model, data,
budget and options give the same key, so re-running after a failure or an interruption starts
where the last run stopped.

The pruning budget leaves room for what the verification firmware adds around the model and the
runtime (startup code, the semihosting harness, ``tpr_model_t``); when the firmware measured on
the emulator is still over the budget (the cost model is an estimate) the pruning budget is
tightened by the measured excess and the pipeline runs again, at most ``max_attempts`` times.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np

from tinyprune.cache import StageCache, stage_key, torch_model_hash
from tinyprune.errors import BadInput, BudgetError, CheckFailed, FirmwareTooBig
from tinyprune.firmware import OPTIMIZE_FLAGS

# What the verification firmware needs beyond the .tflite and the runtime's kernels, measured with
# arm-none-eabi-size on the harness for cortex-m4 (startup, semihosting I/O, SysTick, harness main:
# 3.3 KB of flash) and its static RAM besides the arena and the stack (tpr_model_t, buffers: 120 B).
HARNESS_FLASH_RESERVE = 4096
HARNESS_RAM_RESERVE = 256
RETRY_MARGIN = 64  # bytes taken off a retried budget beyond the measured excess


@dataclass(frozen=True)
class DeployConfig:
    prune: object  # tinyprune.prune.PruneConfig
    convert: object  # tinyprune.convert.ConvertConfig
    samples: int = 200  # test samples run on the target (--limit)
    max_attempts: int = 3
    timeout_s: float | None = None
    renode_samples: int = 10  # samples compiled into the Renode/hardware image
    target: str = "qemu"  # what board/ in the deploy directory links for (tinyprune.integration.TARGETS)
    opt: str = "-Os"  # the firmware's optimization level (--optimize)
    profile: bool = True  # time every operator on the target too (verify's profile_operators)


@dataclass
class Attempt:
    number: int
    prune_flash_bytes: int
    prune_ram_bytes: int
    flash_estimate_bytes: int | None = None
    ram_estimate_bytes: int | None = None
    flash_bytes: int | None = None  # measured on the target
    ram_bytes: int | None = None
    fits: bool = False
    note: str = ""
    cached: list[str] = field(default_factory=list)  # stages served from the cache


@dataclass
class DeployOutcome:
    fits: bool
    bit_exact: bool
    report: dict
    files: dict[str, bytes]  # name -> content, everything DIR receives
    attempts: list[Attempt]


# runtime code beyond the cost model's (-Os) estimate at the other --optimize levels: the fast
# convolution kernels, +1.9 KB at -Os and +2.8 KB at -O2 on ds-cnn (Cortex-M4), with a margin
OPT_CODE_EXTRA = {OPTIMIZE_FLAGS["balanced"]: 2560, OPTIMIZE_FLAGS["speed"]: 3584}


def pruning_budget(budget, opt: str = "-Os"):
    """The budget the pruning aims at: the deploy budget less what the firmware adds around the model."""
    from tinyprune.prune import Budget

    flash = HARNESS_FLASH_RESERVE + OPT_CODE_EXTRA.get(opt, 0)
    return Budget(budget.flash_bytes - flash, budget.ram_bytes - HARNESS_RAM_RESERVE,
                  f"{budget.source}, less {flash} B flash / {HARNESS_RAM_RESERVE} B RAM "
                  f"for the firmware around the model{f' ({opt})' if opt in OPT_CODE_EXTRA else ''}")


def board_with_budget(board, flash_bytes: int, ram_bytes: int):
    """The board with its reserved bytes set so that its budget is exactly ``flash``/``ram``."""
    for what, value, total in (("--flash", flash_bytes, board.flash_bytes), ("--ram", ram_bytes, board.ram_bytes)):
        if value > total:
            raise BadInput(f"{what} {value} is more than {board.name} has ({total} bytes)",
                           hint=f"see `tinyprune boards {board.name}`; leave {what} out to use the board's budget")
    return dataclasses.replace(board, reserved_flash_bytes=board.flash_bytes - flash_bytes,
                               reserved_ram_bytes=board.ram_bytes - ram_bytes)


def _save_torch(model) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(model, buf)
    return buf.getvalue()


def _load_torch(data: bytes):
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False).eval()


def _stage_prune(model, info, data, shape, task, board, budget, cfg: DeployConfig, cache: StageCache, attempt: Attempt,
                 say) -> tuple[object, dict]:
    """(pruned model, prune report): cached by the float model, data, budget and options."""
    from tinyprune.commands.prune import build_report
    from tinyprune.cost import DEFAULT_CONSTANTS
    from tinyprune.prune import check_budget, prune_to_budget

    key = stage_key("prune", torch_model_hash(model), data.fingerprint(), asdict(budget), asdict(cfg.prune), task,
                    board.core, asdict(DEFAULT_CONSTANTS) | {"shared_code_bytes": None})
    hit = cache.get("prune", key)
    if hit:
        attempt.cached.append("prune")
        say("prune: from the cache")
        return _load_torch(hit["model_pruned.pt"]), json.loads(hit["prune_report.json"])
    import copy

    work = copy.deepcopy(model)
    feas = check_budget(work, shape, budget, cfg.prune, core=board.core)
    if feas.fits_now and cfg.prune.force_ratio is None:
        say("prune: the model already fits; passing it through unchanged")
    else:
        say(f"prune: to flash {budget.flash_bytes} B, RAM {budget.ram_bytes} B ({cfg.prune.schedule}, "
            f"{cfg.prune.importance})")
    start = time.monotonic()
    result = prune_to_budget(work, shape, data, budget, cfg.prune, task=task, core=board.core, feasibility=feas)
    args = SimpleNamespace(model=info.source, dataset=data.name)
    report = build_report(args, cfg.prune, budget, board, data, info, shape, task, {"source": "deploy"}, result,
                          time.monotonic() - start)
    pruned = result.model.eval()
    cache.put("prune", key, {"model_pruned.pt": _save_torch(pruned),
                             "prune_report.json": json.dumps(report, default=str).encode()})
    return pruned, report


def _stage_convert(pruned, info, data, shape, task, cfg: DeployConfig, cache: StageCache, attempt: Attempt,
                   say) -> tuple[dict[str, bytes], dict]:
    """(files of the convert stage, convert report)."""
    from tinyprune.commands.convert import convert_report
    from tinyprune.convert import convert

    key = stage_key("convert", torch_model_hash(pruned), data.fingerprint(), asdict(cfg.convert), task,
                    list(data.labels))
    hit = cache.get("convert", key)
    if hit:
        attempt.cached.append("convert")
        say("convert: from the cache")
        report = json.loads(hit.pop("convert_report.json"))
        return hit, report
    start = time.monotonic()
    result = convert(data, model=pruned, input_shape=shape, cfg=cfg.convert, task=task, labels=data.labels,
                     progress=lambda text: say(f"convert: {text}"))
    report = convert_report(result, model=info.source, weights="deploy", dataset=data.name, input_shape=shape,
                            seed=cfg.convert.seed, seconds=time.monotonic() - start)
    files = result.files()
    if result.tflm_vs_tflite_ref_mismatches:
        raise CheckFailed(f"TFLite Micro and TF Lite's reference kernels differ in "
                          f"{result.tflm_vs_tflite_ref_mismatches} output bytes of the converted model")
    cache.put("convert", key, {**files, "convert_report.json": json.dumps(report, default=str).encode()})
    return files, report


def target_samples(model: bytes, data, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    from tinyprune.samples import model_inputs
    from tinyprune.tflite_info import read_model

    n = min(n, len(data.x_test))
    return model_inputs(data.x_test[:n], read_model(model).inputs[0]), data.y_test[:n], f"{n} test samples of {data.name}"


def _stage_verify(tflite: bytes, board, data, cfg: DeployConfig, cache: StageCache, attempt: Attempt,
                  work: Path, say) -> tuple[dict, dict[str, bytes]]:
    """(verify report fields, firmware files): build for the board's QEMU machine and run the test set."""
    from tinyprune.firmware import firmware_fingerprint
    from tinyprune.verify import build_hardware, verify_model

    inputs, labels, described = target_samples(tflite, data, cfg.samples)
    key = stage_key("verify", tflite, board.to_dict() | {"source": None}, inputs.tobytes(), labels.tobytes(),
                    cfg.renode_samples, cfg.opt, cfg.profile, firmware_fingerprint())
    hit = cache.get("verify", key)
    if hit:
        attempt.cached.append("verify")
        say("verify: from the cache")
        return json.loads(hit.pop("verify_report.json")), hit
    work.mkdir(parents=True, exist_ok=True)
    result = verify_model(tflite, board, inputs, labels, work, timeout_s=cfg.timeout_s,
                          progress=lambda text: say(f"verify: {text}"), opt=cfg.opt, profile=cfg.profile)
    fields = result.to_dict() | {"samples_from": described}
    files = {"firmware.elf": Path(result.elf).read_bytes(), "firmware.map": Path(result.map_file).read_bytes()}
    hw_dir = work / "hardware"
    hw_dir.mkdir(exist_ok=True)
    try:
        n = min(cfg.renode_samples, len(inputs))
        hw = build_hardware(tflite, board, inputs[:n], labels[:n], f"{n} test samples of {data.name}", hw_dir,
                            work / "hw-build", opt=cfg.opt)
        fields["hardware"] = hw
        for name in ("firmware-hw.elf", hw["resc"], hw["robot"]):
            files[name] = (hw_dir / name).read_bytes()
    except FirmwareTooBig as exc:  # the board's own memory map can be tighter than the emulated one
        fields["hardware"] = {"error": exc.message}
    fields["elf"], fields["map_file"] = "firmware.elf", "firmware.map"
    cache.put("verify", key, {**files, "verify_report.json": json.dumps(fields, default=str).encode()})
    return fields, files


def deploy(model, info, data, shape, task, board, budget, cfg: DeployConfig, cache: StageCache, work: Path,
           say: Callable[[str], None] = lambda text: None) -> DeployOutcome:
    """Run the pipeline; raises BudgetError (exit 2) before long work if no pruning can fit."""
    from tinyprune.prune import Budget

    vboard = board_with_budget(board, budget.flash_bytes, budget.ram_bytes)
    prune_budget = pruning_budget(budget, cfg.opt)
    attempts: list[Attempt] = []
    for number in range(1, cfg.max_attempts + 1):
        attempt = Attempt(number, prune_budget.flash_bytes, prune_budget.ram_bytes)
        attempts.append(attempt)
        if number > 1:
            say(f"attempt {number} of {cfg.max_attempts}: pruning budget tightened to flash "
                f"{prune_budget.flash_bytes} B, RAM {prune_budget.ram_bytes} B")
        try:
            pruned, prune_report = _stage_prune(model, info, data, shape, task, board, prune_budget, cfg, cache,
                                                attempt, say)
        except BudgetError as exc:
            if number == 1:
                raise
            attempt.note = f"no pruning reaches the tightened budget: {exc.message}"
            break
        attempt.flash_estimate_bytes = prune_report["flash_estimate_bytes"]
        attempt.ram_estimate_bytes = prune_report["ram_estimate_bytes"]
        conv_files, conv_report = _stage_convert(pruned, info, data, shape, task, cfg, cache, attempt, say)
        tflite = conv_files["model_int8.tflite"]
        try:
            verify_fields, fw_files = _stage_verify(tflite, vboard, data, cfg, cache, attempt, work / f"attempt{number}",
                                                    say)
        except FirmwareTooBig as exc:
            over_flash = exc.overflow_bytes if exc.region.upper().startswith("FLASH") else 0
            over_ram = exc.overflow_bytes if not over_flash else 0
            attempt.note = f"the firmware does not link: {exc.message}"
            say(f"verify: {attempt.note}")
        else:
            attempt.flash_bytes, attempt.ram_bytes = verify_fields["flash_bytes"], verify_fields["ram_bytes"]
            attempt.fits = bool(verify_fields["fits"])
            if not verify_fields["bit_exact"]:
                raise CheckFailed(f"{verify_fields['mismatches']} of {verify_fields['samples']} target outputs differ "
                                  "from TFLite Micro's; this is a bug in tinyprune's runtime, please report it")
            if attempt.fits:
                attempt.note = "fits"
                return _outcome(model, pruned, info, data, task, board, vboard, budget, prune_report, conv_files,
                                conv_report, verify_fields, fw_files, attempts, cfg.target)
            over_flash = max(0, attempt.flash_bytes - budget.flash_bytes)
            over_ram = max(0, attempt.ram_bytes - budget.ram_bytes)
            attempt.note = (f"measured flash {attempt.flash_bytes} B, RAM {attempt.ram_bytes} B: over the budget by "
                            f"{over_flash} B flash, {over_ram} B RAM")
            say(f"verify: {attempt.note}")
        if not over_flash and not over_ram:
            break  # did not fit for another reason (e.g. the stack): tightening would not help
        prune_budget = Budget(prune_budget.flash_bytes - (over_flash + RETRY_MARGIN if over_flash else 0),
                              prune_budget.ram_bytes - (over_ram + RETRY_MARGIN if over_ram else 0),
                              f"{budget.source}, tightened by the measured excess (attempt {number + 1})")
    last = attempts[-1]
    raise CheckFailed(f"after {len(attempts)} attempt(s) the firmware still does not fit {board.name}'s budget: "
                      f"{last.note}", hint="raise --flash/--ram, lower --min-channels, or pick a larger board")


def _outcome(model, pruned, info, data, task, board, vboard, budget, prune_report, conv_files, conv_report,
             verify_fields, fw_files, attempts, target: str = "qemu") -> DeployOutcome:
    from tinyprune import integration
    from tinyprune.report import hoist_runs, new_report

    files: dict[str, bytes] = {"model_float.pt": _save_torch(model), "model_pruned.pt": _save_torch(pruned)}
    info_json = json.dumps(asdict(info) | {"input_shape": list(info.input_shape or ())}, indent=2).encode() + b"\n"
    files["model_float.json"] = files["model_pruned.json"] = info_json
    files.update(conv_files)
    files.update(fw_files)
    tflite = conv_files["model_int8.tflite"]
    inputs, labels, _ = target_samples(tflite, data, 1)
    # the user's build links against the deploy budget, like the verified firmware (vboard), at the
    # QEMU machine's addresses or (target "hardware") the board's own
    integration_files = integration.integration_files(vboard, tflite, inputs[0], int(labels[0]), target=target)
    files.update(integration_files)
    v = verify_fields
    metric = conv_report["metric"]
    accuracy = {
        "float": prune_report["metric_before"],
        "pruned": prune_report["metric_after"],
        "int8_tflite": conv_report["metric_by_stage"]["tflite_int8"],
        "tflm_host": conv_report["metric_by_stage"]["tflm"],
        "target": v["accuracy"] if metric == "accuracy" else None,
        "target_host_tflm_same_samples": v["host_accuracy"],
    }
    reserved_flash = board.flash_bytes - budget.flash_bytes
    reserved_ram = board.ram_bytes - budget.ram_bytes
    report = new_report(
        "deploy",
        model=info.source, dataset=data.name, task=task, metric=metric,
        board=board.name, core=board.core, mcu=board.mcu, clock_hz=board.clock_hz, emulator="qemu",
        qemu_machine=board.qemu_machine,
        fits=bool(v["fits"]), bit_exact=bool(v["bit_exact"]), samples=v["samples"], mismatches=v["mismatches"],
        budget={"flash_bytes": budget.flash_bytes, "ram_bytes": budget.ram_bytes, "source": budget.source},
        board_memory={"flash_bytes": board.flash_bytes, "ram_bytes": board.ram_bytes,
                      "reserved_flash_bytes": reserved_flash, "reserved_ram_bytes": reserved_ram},
        accuracy=accuracy,
        sizes={k: v[k] for k in ("flash_bytes", "model_bytes", "runtime_code_bytes", "ram_bytes", "static_ram_bytes",
                                 "arena_bytes", "stack_bytes", "stack_reserved_bytes", "flash_budget_bytes",
                                 "ram_budget_bytes", "tflm_arena_bytes", "tflm_arena_bytes_32bit_estimate")}
        | {"other_code_bytes": v["flash_bytes"] - v["model_bytes"] - v["runtime_code_bytes"],
           "flash_free_bytes": budget.flash_bytes - v["flash_bytes"], "ram_free_bytes": budget.ram_bytes - v["ram_bytes"]},
        speed={"instructions_per_inference": v["instructions_per_inference"],
               "macs_per_inference": v["macs_per_inference"], "instructions_per_mac": v["instructions_per_mac"],
               "estimated_latency_ms": v["estimated_latency_ms"], "opt_flag": v.get("opt_flag", "-Os"),
               "init_instructions": v.get("init_instructions"),
               "by_operator": v.get("profile"),
               "note": "instructions counted by QEMU -icount; latency = instructions / clock, an estimate"},
        # which stages came from the cache depends on earlier runs, not on the inputs: run field
        attempts=[{k: v for k, v in asdict(a).items() if k != "cached"} for a in attempts],
        prune=prune_report, convert=conv_report, verify=v,
        integration=integration.user_build_lines(),
        board_target=target,
        files=sorted(files) + ["report.json", "report.md", "report.html"],
    )
    hoist_runs(report, "prune", "convert")  # one field (run) holds every timestamp and duration
    report["run"]["cached_stages"] = [a.cached for a in attempts]  # per attempt
    return DeployOutcome(bool(v["fits"]), bool(v["bit_exact"]), report, files, attempts)
