"""The deploy's human-readable reports: Markdown, self-contained HTML, PNG plots, terminal summary.

The report dicts are written by hand with the keys ``tinyprune.deploy._outcome`` produces, so
these tests need no model, toolchain or emulator.
"""

from __future__ import annotations

import base64
import copy
import io
import re
import shutil
import subprocess

import pytest
from PIL import Image

from tinyprune.deploy_report import PLOTS, render, summary_lines

LAYERS = [
    ("features.0", "CONV_2D", 16, 8, False), ("features.3", "CONV_2D", 32, 16, False),
    ("features.6", "CONV_2D", 64, 24, False), ("classifier.0", "FULLY_CONNECTED", 64, 32, False),
    ("classifier.2", "FULLY_CONNECTED", 10, 10, True),
]


def _layers(pruned: bool) -> list[dict]:
    rows = []
    for name, op, before, after, protected in LAYERS:
        after = after if pruned else before
        rows.append({"name": name, "op": op, "group": None if protected else name, "prunable": not protected,
                     "protected": protected, "channels_before": before, "channels_after": after,
                     "params_before": before * 90, "params_after": after * 90,
                     "activation_bytes_before": before * 40, "activation_bytes_after": after * 40,
                     "flash_bytes_before": before * 100, "flash_bytes_after": after * 100})
    return rows


def _step(step: int, phase: str, model_bytes: int, flash: int, value: float, metric: str, over: str | None) -> dict:
    return {"step": step, "phase": phase, "channels": {}, "params": model_bytes * 3, "deployed_params": model_bytes,
            "macs": model_bytes * 20, "param_bytes": model_bytes - 2000, "model_bytes": model_bytes,
            "flash_estimate_bytes": flash, "ram_estimate_bytes": 9000 + model_bytes // 10, "arena_bytes": 6000,
            "target_flash_bytes": 389120, "target_ram_bytes": 98048, "over_budget": over, f"val_{metric}": value,
            "finetune_epochs": 1, "seconds": 1.5}


def make_report(metric: str = "accuracy", passed_through: bool = False) -> dict:
    """A deploy report as ``tinyprune.deploy`` writes it, for a 512 KiB / 128 KiB board."""
    acc = metric == "accuracy"
    if passed_through:
        steps = [_step(0, "start", 300000, 320000, 0.95 if acc else 0.012, metric, None)]
    else:
        values = [0.95, 0.93, 0.91, 0.94] if acc else [0.010, 0.013, 0.016, 0.011]
        steps = [_step(0, "start", 500000, 520000, values[0], metric, "flash"),
                 _step(1, "prune", 420000, 440000, values[1], metric, "flash"),
                 _step(2, "prune", 345000, 365000, values[2], metric, None),
                 _step(3, "final", 345000, 365000, values[3], metric, None)]
    flash, model, runtime = (323000, 305100, 13000) if passed_through else (363000, 345100, 13000)
    verify = {"samples": 200, "samples_from": "200 test samples of mnist1d", "accuracy": 0.935 if acc else None,
              "host_accuracy": 0.935 if acc else None, "instructions_per_inference_max": 1_300_000.0}
    return {
        "stage": "deploy", "tinyprune_version": "0.1.0", "created": "2024-01-01T00:00:00+00:00",
        "model": "mnist1d-cnn" if acc else "mnist1d-ae", "dataset": "mnist1d",
        "task": "classification" if acc else "reconstruction", "metric": metric,
        "board": "nucleo-f446re", "core": "cortex-m4", "mcu": "STM32F446RE", "clock_hz": 180_000_000,
        "emulator": "qemu", "qemu_machine": "mps2-an386",
        "fits": True, "bit_exact": True, "samples": 200, "mismatches": 0,
        "budget": {"flash_bytes": 393216, "ram_bytes": 98304, "source": "board nucleo-f446re"},
        "board_memory": {"flash_bytes": 524288, "ram_bytes": 131072, "reserved_flash_bytes": 131072,
                         "reserved_ram_bytes": 32768},
        "accuracy": {"float": 0.95 if acc else 0.0101, "pruned": 0.94 if acc else 0.0112,
                     "int8_tflite": 0.937 if acc else 0.0125, "tflm_host": 0.937 if acc else 0.0125,
                     "target": 0.935 if acc else None, "target_host_tflm_same_samples": 0.935 if acc else None},
        "sizes": {"flash_bytes": flash, "model_bytes": model, "runtime_code_bytes": runtime,
                  "other_code_bytes": flash - model - runtime, "ram_bytes": 14200, "static_ram_bytes": 10104,
                  "arena_bytes": 9800, "stack_bytes": 1480, "stack_reserved_bytes": 4096,
                  "flash_budget_bytes": 393216, "ram_budget_bytes": 98304, "flash_free_bytes": 393216 - flash,
                  "ram_free_bytes": 98304 - 14200, "tflm_arena_bytes": 14500,
                  "tflm_arena_bytes_32bit_estimate": 13900},
        "speed": {"instructions_per_inference": 1_234_567.0, "macs_per_inference": 456_789,
                  "instructions_per_mac": 2.7, "estimated_latency_ms": 6.859,
                  "by_operator": [
                      {"index": 0, "op": "CONV_2D", "macs": 400_000, "instructions": 1_000_000.0,
                       "instructions_per_mac": 2.5, "share": 0.81},
                      {"index": 1, "op": "MEAN", "macs": 0, "instructions": 200_000.0, "instructions_per_mac": None,
                       "share": 0.162},
                      {"index": 2, "op": "FULLY_CONNECTED", "macs": 56_789, "instructions": 34_567.0,
                       "instructions_per_mac": 0.609, "share": 0.028}],
                  "note": "instructions counted by QEMU -icount; latency = instructions / clock, an estimate"},
        "attempts": [{"number": 1, "prune_flash_bytes": 389120, "prune_ram_bytes": 98048,
                      "flash_estimate_bytes": 365000, "ram_estimate_bytes": 12800, "flash_bytes": flash,
                      "ram_bytes": 14200, "fits": True, "note": "fits", "cached": ["prune"]}],
        "prune": {"metric": metric, "passed_through": passed_through, "budget_flash_bytes": 389120,
                  "budget_ram_bytes": 98048,
                  "budget_source": "board nucleo-f446re, less 4096 B flash / 256 B RAM for the firmware",
                  "layers": _layers(not passed_through), "search_steps": steps, "chosen_step": len(steps) - 1,
                  "metric_before": 0.95, "metric_after": 0.94},
        "convert": {"metric": metric, "ops": ["CONV_2D", "FULLY_CONNECTED", "RESHAPE"]},
        "verify": verify,
        "integration": {"cmake": ["include(/opt/tinyprune/firmware/cmake/tinyprune.cmake)"],
                        "make": ["include /opt/tinyprune/firmware/make/tinyprune.mk"]},
        "files": ["firmware.elf", "model_data.cc", "model_data.h", "model_int8.tflite", "report.html",
                  "report.json", "report.md"],
    }


CASES = {"classification": make_report(), "passed-through": make_report(passed_through=True),
         "mse": make_report("mse")}


@pytest.fixture(scope="module", params=sorted(CASES))
def rendered(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    names = render(copy.deepcopy(CASES[request.param]), out)
    return request.param, out, names


def _not_blank(png: bytes) -> bool:
    img = Image.open(io.BytesIO(png))
    img.load()
    return len(img.convert("RGB").getcolors(maxcolors=1 << 24) or []) > 1


def test_every_file_is_written(rendered):
    _, out, names = rendered
    assert sorted(names) == sorted(["report.md", "report.html", *PLOTS])
    for name in names:
        assert (out / name).stat().st_size > 0, name


def test_plots_are_pngs_and_not_blank(rendered):
    _, out, _ = rendered
    for name in PLOTS:
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG"), name
        assert _not_blank(data), name
        assert b"Software" not in data and b"matplotlib" not in data.lower(), f"{name} carries version metadata"


def test_html_is_self_contained(rendered):
    _, out, _ = rendered
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "src=\"http" not in text and "href=" not in text and "<link" not in text
    assert "url(" not in text and "<script" not in text and "@import" not in text
    srcs = re.findall(r"<img [^>]*src=\"([^\"]*)\"", text)
    assert len(srcs) == text.count("<img ") == len(PLOTS)
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert _not_blank(base64.b64decode(src.split(",", 1)[1], validate=True))


def test_markdown_has_the_headline_and_tables(rendered):
    case, out, _ = rendered
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "**Fits nucleo-f446re: yes." in md
    margin = "70,216 B free, 17.9 %" if case == "passed-through" else "30,216 B free, 7.7 %"
    assert f"of 393,216 B ({margin} of the budget)" in md  # flash: 393216 - 323000 or - 363000
    header = "| Stage | Accuracy | Measured on |" if case != "mse" else "| Stage | MSE | Measured on |"
    assert header in md
    row = "| on target | 93.50 % |" if case != "mse" else "| on target | n/a |"
    assert row in md
    for image in PLOTS:
        assert f"]({image})" in md
    assert "estimate from instruction counts" in md
    assert "### By operator" in md and "| 0 | CONV_2D | 400,000 | 1,000,000 | 2.50 | 81.0 % |" in md
    assert "| 1 | MEAN | 0 | 200,000 | n/a | 16.2 % |" in md
    assert "| classifier.2 | FULLY_CONNECTED | 10 (unchanged) |" in md
    assert "CMake: `include(/opt/tinyprune/firmware/cmake/tinyprune.cmake)`" in md
    assert "Make: `include /opt/tinyprune/firmware/make/tinyprune.mk`" in md
    assert "- `model_int8.tflite`" in md
    if case == "passed-through":
        assert "passed through unchanged" in md
    else:
        assert "| features.0 | CONV_2D | 16 → 8 |" in md


def test_rendering_twice_gives_identical_pngs(tmp_path):
    report = CASES["classification"]
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    render(copy.deepcopy(report), first)
    render(copy.deepcopy(report), second)
    for name in [*PLOTS, "report.md", "report.html"]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_summary_lines_say_fit_margins_and_estimate():
    lines = summary_lines(CASES["classification"])
    text = "\n".join(lines)
    assert all(isinstance(line, str) and "\n" not in line for line in lines)
    assert "nucleo-f446re" in text and "fits       yes" in text
    assert "flash 30,216 B free (7.7 % of the budget)" in text  # 393216 - 363000
    assert "RAM 84,104 B free (85.6 % of the budget)" in text  # 98304 - 14200
    assert "93.50 %" in text and "1,234,567 instructions per inference" in text
    assert "6.859 ms at 180 MHz" in text and "estimate from instruction counts" in text
    assert "costliest  CONV_2D #0 81.0 %, MEAN #1 16.2 %, FULLY_CONNECTED #2 2.8 % of the instructions" in text


def test_summary_of_an_mse_run_and_an_unfit_run():
    mse = "\n".join(summary_lines(CASES["mse"]))
    assert "MSE" in mse and "0.01010" in mse and "target n/a" in mse
    over = copy.deepcopy(CASES["classification"])
    over["fits"] = False
    over["sizes"]["ram_bytes"] = 100000
    text = "\n".join(summary_lines(over))
    assert "fits       NO" in text and "OVER by 1,696 B" in text


def test_missing_values_show_na(tmp_path):
    sparse = {"board": "microbit-v1", "metric": "accuracy", "fits": None, "accuracy": {"float": None},
              "sizes": {"flash_bytes": None}, "speed": {}, "prune": {"search_steps": [], "layers": []},
              "attempts": [{}], "integration": None, "files": None}
    names = render(sparse, tmp_path)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "n/a" in md and len(names) == 2 + len(PLOTS)
    for name in PLOTS:
        assert _not_blank((tmp_path / name).read_bytes()), name
    assert any("n/a" in line for line in summary_lines({}))


def _browser() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def test_html_renders_in_a_headless_browser(rendered, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("neither chromium nor chromium-browser is on PATH")
    _, out, _ = rendered
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,1600", (out / "report.html").as_uri()],
                   capture_output=True, timeout=60, check=False)
    assert shot.is_file(), "the browser wrote no screenshot"
    assert _not_blank(shot.read_bytes())
