"""``tinyprune train --model M --dataset D --out DIR``: train a model (from scratch) on a dataset."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

from tinyprune.commands._common import add_json_option, add_output_options

HELP = "train a model-zoo network on a dataset"
DESCRIPTION = """\
Train a model from scratch (Adam, cosine learning rate, cross-entropy; mean squared
reconstruction error for the fc-autoencoder) and write:

  DIR/model_float.pt      the trained model (load: tinyprune.models.load_saved_model(path))
  DIR/model_float.json    how to re-import it (zoo name, or your .py file)
  DIR/train_report.json   accuracy per epoch, final validation/test accuracy, estimated int8 cost

MODEL is a zoo name (`digits-cnn`, `mnist1d-cnn`, `ds-cnn`, `resnet8`, `mobilenetv1-025`,
`fc-autoencoder`), path/to/file.py:factory, or a model saved with torch.save. DATASET is
`digits`, `mnist1d` or an .npz with x_train, y_train, x_test, y_test (optionally x_val,
y_val), float32 inputs in PyTorch layout. Training is deterministic for a given --seed.

Examples:
  tinyprune train --model mnist1d-cnn --dataset mnist1d --out runs/mnist1d
  tinyprune train --model digits-cnn --dataset digits --epochs 20 --seed 1 --out runs/digits
  tinyprune train --model my_net.py:build --dataset my_data.npz --out runs/mine
"""


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="M",
                        help="zoo name, path/to/file.py:factory, or a saved .pt")
    parser.add_argument("--dataset", required=True, metavar="D", help="digits, mnist1d, or a .npz file")
    parser.add_argument("--weights", type=Path, metavar="W", help="state dict to start from (torch.save(model.state_dict()))")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser)
    parser.add_argument("--epochs", type=int, default=30, metavar="N", help="training epochs (default 30)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 0.003)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="default 64")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_output_options(parser)
    add_json_option(parser)


def load_inputs(args: argparse.Namespace):
    """Dataset, model, ModelInfo, per-sample input shape and task; checks they go together."""
    import torch

    from tinyprune.data import load_dataset
    from tinyprune.errors import BadInput
    from tinyprune.models import load_model, resolve_input_shape
    from tinyprune.train import set_seed

    data = load_dataset(args.dataset)
    set_seed(getattr(args, "seed", 0))  # the model's initial weights follow --seed too
    model, info = load_model(args.model, args.weights)
    shape = resolve_input_shape(info, data.input_shape)
    if tuple(shape) != tuple(data.input_shape):
        raise BadInput(f"{args.model} expects inputs of shape {tuple(shape)} but {args.dataset}'s are {data.input_shape}")
    with torch.no_grad():
        try:
            out = model.eval()(torch.from_numpy(data.x_train[:2]))
        except Exception as exc:
            raise BadInput(f"{args.model} failed on {args.dataset}'s inputs: {type(exc).__name__}: {exc}") from None
    if info.task == "reconstruction":
        if out.numel() != data.x_train[:2].size:
            raise BadInput(f"{args.model} reconstructs {out.shape[1:]} from inputs {data.input_shape}; sizes differ")
    elif out.dim() != 2 or out.shape[1] < data.num_classes:
        raise BadInput(f"{args.model} outputs shape {tuple(out.shape[1:])} but {args.dataset} has {data.num_classes} classes",
                       hint="the model must return one logit per class, shape (N, classes)")
    return data, model, info, tuple(shape), info.task


def run(args: argparse.Namespace) -> int:
    from tinyprune import cost
    from tinyprune.errors import BadInput
    from tinyprune.models import save_model
    from tinyprune.outdir import check_output_dir, staged_output, write_file_atomic
    from tinyprune.prune import torch_params
    from tinyprune.report import new_report, to_json, write_report
    from tinyprune.train import METRICS, TrainConfig, train

    if args.epochs < 1:
        raise BadInput(f"--epochs must be at least 1, got {args.epochs}")
    if args.batch_size < 1:
        raise BadInput(f"--batch-size must be at least 1, got {args.batch_size}")
    if not 0 < args.lr < float("inf"):  # also rejects NaN and infinity
        raise BadInput(f"--lr must be positive, got {args.lr}")
    check_output_dir(args.out, args.force)
    data, model, info, shape, task = load_inputs(args)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    metric = METRICS[task]
    print(f"Training {args.model} on {data.name} ({len(data.x_train)} train / {len(data.x_val)} val / "
          f"{len(data.x_test)} test samples, input {shape}) for {cfg.epochs} epochs, seed {cfg.seed}")
    start = time.monotonic()
    result = train(model, data, cfg, desc=f"train {args.model}", task=task)
    est = cost.estimate(model, shape)
    report = new_report(
        "train", model=args.model, model_kind=info.kind, dataset=args.dataset, dataset_description=data.description,
        input_shape=list(shape), task=task, metric=metric, config=asdict(cfg),
        params=torch_params(model), val_metric=result.val_accuracy, test_metric=result.test_accuracy,
        val_accuracy=result.val_accuracy if metric == "accuracy" else None,
        test_accuracy=result.test_accuracy if metric == "accuracy" else None,
        history=result.history, run={"seconds": round(time.monotonic() - start, 1)},
        model_bytes_estimate=est.model_bytes, flash_estimate_bytes=est.flash_bytes, ram_estimate_bytes=est.ram_bytes,
        files={"model": "model_float.pt", "model_info": "model_float.json"},
        load="tinyprune.models.load_saved_model('model_float.pt')",
    )
    with staged_output(args.out, args.force) as tmp:
        save_model(model, tmp / "model_float.pt", info)
        write_report(tmp / "train_report.json", report)
    if args.json_file:
        write_file_atomic(args.json_file, to_json(report))
    value = f"{100 * result.test_accuracy:.2f} %" if metric == "accuracy" else f"{result.test_accuracy:.5f}"
    print(f"Test {metric}: {value} (validation {result.val_accuracy:.4f}); "
          f"{report['params']} parameters, int8 model about {est.model_bytes} bytes")
    print(f"Wrote {args.out}/model_float.pt and train_report.json")
    return 0
