"""``best.pt``: what a training cell keeps of its best epoch, and how later stages rebuild it.

A checkpoint holds plain types and CPU tensors only, so ``torch.load(weights_only=True)`` reads
it: ``{"state_dict": ..., "meta": {...}}``. ``meta["image_size"]`` is the cache side the model
was validated against (prediction checks it against the test cache); ``meta["input_size"]`` the
side the model itself sees. ``meta["model_params"]`` leave out ``pretrained``: the trained
weights replace the initial ones, so rebuilding never needs the weights cache (the architecture
does not depend on it, see vocflow.models).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vocflow.artifacts import Selection, num_outputs
from vocflow.errors import READ_ERRORS, DataError, reading, rebuild
from vocflow.grid import TrainSettings
from vocflow.models import build_model


def checkpoint_payload(model: nn.Module, s: TrainSettings, class_names: Sequence[str],
                       cache_size: int, input_size: int, epoch: int, monitor: str,
                       score: float) -> dict[str, Any]:
    """The best.pt content of ``model`` after ``epoch``; tensors are cloned to the CPU, so later
    training cannot change it."""
    params = {k: v for k, v in s.model_params.items() if k != "pretrained"}
    meta = {"task": s.task, "model": s.model, "arch": s.arch, "model_params": params,
            "pretrained": s.model_params.get("pretrained", False),
            "num_outputs": num_outputs(s.task, len(class_names)),
            "class_names": list(class_names), "image_size": cache_size,
            "input_size": input_size, "epoch": epoch, "monitor": monitor, "score": float(score)}
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return {"state_dict": state, "meta": meta}


class AtInputSize(nn.Module):
    """A model trained at side ``input_size`` applied to (N, 3, H, W) inputs of any side: the
    input is resized to input_size the way training's validation resized it (bilinear,
    antialiased), segmentation logits (N, K, s, s) back to (N, K, H, W)."""

    def __init__(self, model: nn.Module, input_size: int, task: str) -> None:
        super().__init__()
        self.model, self.input_size, self.task = model, int(input_size), task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[-2:])
        side = (self.input_size, self.input_size)
        if size != side:
            x = F.interpolate(x, size=side, mode="bilinear", align_corners=False, antialias=True)
        out = self.model(x)
        if self.task == "segmentation" and tuple(out.shape[-2:]) != size:
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        return out


def input_side(models: Sequence[nn.Module], cache_side: int) -> int:
    """The side to feed ``models`` at: the one they were all trained at (AtInputSize), else
    the cache's (a mixed ensemble shares the cache side, each model resizing for itself)."""
    sides = {m.input_size if isinstance(m, AtInputSize) else cache_side for m in models}
    return sides.pop() if len(sides) == 1 else cache_side


def load_payload(path: str | Path, what: str, fix: str,
                 device: torch.device | str = "cpu") -> Any:
    """``torch.load(weights_only=True)`` of ``path``; a zero-byte, truncated or garbage file, or
    one that holds pickled objects, is a DataError naming the file and ``fix``. torch reports a
    broken zip container as RuntimeError."""
    with reading(path, what, fix, (*READ_ERRORS, RuntimeError)):
        return torch.load(path, map_location=device, weights_only=True)


def load_checkpoint(path: str | Path, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model (eval mode, on ``device``) and its meta from ``path``; wrapped in
    ``AtInputSize`` when it was trained at another side than its cache's."""
    payload = load_payload(path, "torch checkpoint", rebuild(path), device)
    # A loadable file that is not a best.pt of this vocflow (other keys, other shapes).
    with reading(path, "vocflow checkpoint", rebuild(path), (KeyError, TypeError, RuntimeError)):
        if not isinstance(payload, dict):
            raise TypeError(f"it holds a {type(payload).__name__}, not a mapping")
        meta = payload["meta"]
        model = build_model(meta["task"], meta["arch"], meta["num_outputs"],
                            **meta["model_params"])
        model.load_state_dict(payload["state_dict"])
        if meta.get("input_size", meta["image_size"]) != meta["image_size"]:
            model = AtInputSize(model, meta["input_size"], meta["task"])
    return model.to(device).eval(), meta


def load_fold_models(selection: Selection, cache_size: int, cache_dir: str | Path,
                     device: torch.device) -> list[nn.Module]:
    """The selected cell's fold models, in fold order, checked against the cache's image size."""
    return load_models(selection.require_checkpoints(), cache_size, cache_dir, device)


def load_models(paths: Sequence[str | Path], cache_size: int, cache_dir: str | Path,
                device: torch.device) -> list[nn.Module]:
    """The models of ``paths`` (fold or refit checkpoints), checked against the cache's side."""
    models = []
    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"checkpoint {path} is missing; re-run the rule that writes it "
                            "(snakemake --forcerun on that file)")
        model, meta = load_checkpoint(path, device)
        if meta["image_size"] != cache_size:
            raise DataError(f"{path} was trained at {meta['image_size']} px but the cache "
                            f"{cache_dir} is {cache_size} px; re-run the workflow after "
                            "changing data.image_size")
        models.append(model)
    return models
