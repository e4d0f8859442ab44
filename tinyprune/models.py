"""Where models come from and how they are saved between stages.

A model is named by one of:
  * a zoo name (``mnist1d-cnn``), optionally with ``--weights state.pt``;
  * ``path/to/file.py:factory``, a function returning an ``nn.Module``, with optional weights;
  * a whole model saved with ``torch.save(model, path)`` (``.pt``/``.pth``).

Stages save models with :func:`save_model`: the whole module (pruned models have shapes no
factory reproduces) plus a JSON sidecar saying how to re-import a user's model file. Load one
back with the single call ``tinyprune.models.load_saved_model(path)``; for zoo models plain
``torch.load(path, weights_only=False)`` works too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from tinyprune import zoo
from tinyprune.errors import BadInput


@dataclass(frozen=True)
class ModelInfo:
    """What we know about a model besides its weights."""

    source: str  # the spec the user gave
    kind: str  # "zoo", "factory" or "saved"
    input_shape: tuple[int, ...] | None  # one sample, PyTorch layout; None if unknown
    task: str = "classification"
    zoo_name: str | None = None
    factory_file: str | None = None  # absolute path of the user's .py, to re-import on load
    factory_module: str | None = None  # the module name it was imported under


def _import_user_file(path: Path) -> tuple[object, str]:
    """Import a user's .py under a stable name derived from its path (pickles refer to it)."""
    name = "tinyprune_user_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name], name
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BadInput(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code may raise anything; report it as their input
        del sys.modules[name]
        raise BadInput(f"importing {path} failed: {type(exc).__name__}: {exc}",
                       hint="run the file with python to see the full error") from None
    return module, name


def _load_weights(model: nn.Module, weights: Path) -> None:
    if not weights.is_file():
        raise BadInput(f"weights file {weights} does not exist")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BadInput(f"{weights} is not a PyTorch state dict: {type(exc).__name__}: {exc}",
                       hint="save weights with torch.save(model.state_dict(), path)") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BadInput(f"{weights} holds a {type(state).__name__}, not a state dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise BadInput(f"weights {weights} do not match the model: {first}",
                       hint="the weights must come from the same architecture (for pruned models use the saved .pt)") from None


def load_model(spec: str, weights: str | Path | None = None) -> tuple[nn.Module, ModelInfo]:
    """Build or load the model ``spec`` names; see the module docstring."""
    weights = Path(weights) if weights else None
    if ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        file_part, factory_name = spec.rsplit(":", 1)
        path = Path(file_part)
        if not path.is_file():
            raise BadInput(f"model file {path} does not exist")
        module, module_name = _import_user_file(path)
        factory = getattr(module, factory_name, None)
        if not callable(factory):
            raise BadInput(f"{path} has no function '{factory_name}'",
                           hint=f"define def {factory_name}(): return MyModel() in {path}")
        try:
            model = factory()
        except Exception as exc:
            raise BadInput(f"{spec}: the factory raised {type(exc).__name__}: {exc}") from None
        if not isinstance(model, nn.Module):
            raise BadInput(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
        if weights:
            _load_weights(model, weights)
        info = ModelInfo(spec, "factory", getattr(model, "input_shape", None),
                         factory_file=str(path.resolve()), factory_module=module_name)
        return model.eval(), info
    if spec in zoo.ZOO:
        entry = zoo.get(spec)
        model = entry.build()
        if weights:
            _load_weights(model, weights)
        return model.eval(), ModelInfo(spec, "zoo", entry.input_shape, task=entry.task, zoo_name=spec)
    path = Path(spec)
    if path.suffix in (".pt", ".pth") or path.exists():
        model, info = load_saved_model(path)
        if weights:
            _load_weights(model, weights)
        return model, info
    zoo.get(spec)  # raises with the close zoo names
    raise AssertionError("unreachable")


def save_model(model: nn.Module, path: Path, info: ModelInfo) -> None:
    """Save the whole module and a ``<name>.json`` sidecar with its ModelInfo."""
    path = Path(path)
    torch.save(model, path)
    sidecar = path.with_suffix(".json")
    sidecar.write_text(json.dumps(asdict(info), indent=2) + "\n")


def load_saved_model(path: str | Path) -> tuple[nn.Module, ModelInfo]:
    """Load a model written by :func:`save_model` (or any ``torch.save(model)`` file)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"model file {path} does not exist")
    sidecar = path.with_suffix(".json")
    info = None
    if sidecar.is_file():
        try:
            raw = json.loads(sidecar.read_text())
            raw["input_shape"] = tuple(raw["input_shape"]) if raw.get("input_shape") else None
            info = ModelInfo(**raw)
        except (ValueError, TypeError) as exc:
            raise BadInput(f"{sidecar} is not a tinyprune model description: {exc}") from None
        if info.factory_file and info.factory_module and info.factory_module not in sys.modules:
            if not Path(info.factory_file).is_file():
                raise BadInput(f"{path} was made from {info.factory_file}, which no longer exists",
                               hint="the saved model needs its class definition to load")
            _import_user_file(Path(info.factory_file))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise BadInput(f"{path} is not a saved PyTorch model: {type(exc).__name__}: {exc}",
                       hint="save whole models with torch.save(model, path), or pass file.py:factory with --weights") from None
    if isinstance(obj, dict):
        raise BadInput(f"{path} holds a state dict, not a whole model",
                       hint="give the architecture too: --model file.py:factory --weights " + str(path))
    if not isinstance(obj, nn.Module):
        raise BadInput(f"{path} holds a {type(obj).__name__}, not a torch.nn.Module")
    if info is None:
        info = ModelInfo(str(path), "saved", getattr(obj, "input_shape", None))
    return obj.eval(), info


def resolve_input_shape(info: ModelInfo, dataset_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """The per-sample input shape: the model's own if known, else the dataset's."""
    if info.input_shape and dataset_shape and tuple(info.input_shape) != tuple(dataset_shape):
        raise BadInput(f"the model expects inputs of shape {tuple(info.input_shape)} but the dataset's are {tuple(dataset_shape)}")
    shape = info.input_shape or dataset_shape
    if not shape:
        raise BadInput(f"the input shape of {info.source} is unknown",
                       hint="give a dataset, or set `input_shape = (C, H, W)` on the model")
    return tuple(shape)
