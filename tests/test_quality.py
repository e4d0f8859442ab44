"""The bar for the model's metric (tinyprune.quality): accuracy higher-is-better, MSE lower."""

from __future__ import annotations

from tinyprune.quality import gate, metric_on_target


def test_gate_compares_each_metric_the_right_way_up():
    assert gate("accuracy", 0.95, 0.95)["passed"] and not gate("accuracy", 0.9499, 0.95)["passed"]
    assert gate("mse", 0.05, 0.05)["passed"] and not gate("mse", 0.0501, 0.05)["passed"]
    assert not gate("accuracy", None, 0.0)["passed"]  # nothing measured never passes
    assert gate("accuracy", 0.935, 0.95)["text"] == "accuracy 93.50 % is below --min-accuracy 95.00 %"
    assert gate("mse", 0.07, 0.06)["text"] == "MSE 0.07000 is above --max-mse 0.06000"
    assert gate("mse", 0.05, 0.06)["text"] == "MSE 0.05000 <= --max-mse 0.06000: passed"


def test_metric_on_target_is_the_boards_accuracy_or_the_mse_it_matched():
    accuracy = {"target": 0.93, "tflm_host": 0.94}
    assert metric_on_target({"metric": "accuracy", "bit_exact": True, "accuracy": accuracy}) == 0.93
    mse = {"target": None, "tflm_host": 0.012}
    assert metric_on_target({"metric": "mse", "bit_exact": True, "accuracy": mse}) == 0.012
    assert metric_on_target({"metric": "mse", "bit_exact": False, "accuracy": mse}) is None
