"""Training of one grid cell: fit on K-1 folds, validate on the held-out fold every epoch; or
a refit of the selected cell's recipe on every training image (``refit_cell``).

Writes the best checkpoint, the per-epoch metrics and the out-of-fold (OOF) probabilities of the
best epoch; early stopping (``patience``) ends a run and the best weights are restored before
the OOF pass. Deterministic on CPU for a given seed and fold, with or without loader workers.

Recipe (vocflow.optim): optimiser and LR schedule by config name, two phases for transfer
models (frozen backbone, then everything). channels_last on every device; on CUDA also mixed
precision (bf16 where supported, else fp16 with a grad scaler), pinned memory and loader
workers from the job's CPUs.

Every epoch's metrics.csv row holds the training-set scores (``train_{metric}``, from the
training batches themselves: vocflow.epoch_scores.TrainingScores) beside the validation ones.
``watch`` chooses what early stopping and the plateau schedule follow: the selection metric or
the validation loss; the kept checkpoint is always the best epoch by the selection metric.

A refit has no validation fold: it trains the epoch count cross-validation chose (the mean best
epoch of the selected cell's folds, vocflow.leaderboard.refit_epochs) and keeps the last epoch;
its plateau schedule follows the training-set scores.

Resumable (vocflow.resume): with ``state_dir`` the run saves its state after every epoch and on
SIGUSR1/SIGTERM after the current batch, and a restarted job continues where it stopped. The
state is deleted once the outputs are written: the outputs are the durable record, and a grid
of hundreds of cells should not keep an optimiser's moments per cell on disk.

Progress (vocflow.status): metrics.csv is rewritten, atomically, with the rows so far after
every epoch and as soon as a resumed run starts (Snakemake deleted the failed job's copy); the
last write holds the final rows. The log names the host, pid and SLURM job of each attempt.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from vocflow.artifacts import PROB_SCALE, num_outputs, write_metrics, write_oof
from vocflow.atomic import torch_save
from vocflow.checkpoints import checkpoint_payload
from vocflow.data.cache import Cache, load_cache
from vocflow.data.dataset import CacheBatches, EpochBatches, unwrap
from vocflow.data.folds import fold_split
from vocflow.data.transforms import build_transform, normalize_batch
from vocflow.epoch_scores import TrainingScores
from vocflow.errors import ConfigError
from vocflow.evaluation import TASK_METRICS, split_scores
from vocflow.grid import TrainSettings
from vocflow.leaderboard import refit_epochs
from vocflow.losses import build_loss, pixel_counts
from vocflow.models import backbone_blocks, backbone_modules, build_model, param_groups
from vocflow.optim import Phase, build_phase, freeze_epochs, train_mode
from vocflow.progress import BatchProgress, epochs_bar
from vocflow.resume import (
    Interrupted,
    StateStore,
    StopFlag,
    fingerprint,
    ignore_stop_signals,
    rng_state,
    set_rng_state,
    stop_signals,
)
from vocflow.runtime import pick_device, seed_everything

log = logging.getLogger(__name__)
# callback(event, epoch, batch, model), event "batch_end" or "epoch_end": a hook for tests.
Callback = Callable[[str, int, int, nn.Module], None]


# ----------------------------------------------------------------------------- set-up


@dataclass
class Amp:
    """Mixed precision (CUDA only: CPU runs stay in fp32) and memory format of one run."""

    dtype: torch.dtype | None  # autocast dtype; None = full precision
    scaler: torch.amp.GradScaler  # enabled for fp16 only (bf16 has fp32's exponent range)
    channels_last: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.dtype)


def amp_for(s: TrainSettings, device: torch.device) -> Amp:
    # channels_last on CPU too: oneDNN's NHWC convolutions train 1.1-1.4x faster here
    # (bench/models.py --channels-last), in full precision and still deterministic.
    if device.type != "cuda":
        return Amp(None, torch.amp.GradScaler("cuda", enabled=False), s.channels_last)
    dtype = None
    if s.amp:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    return Amp(dtype, scaler, s.channels_last)


def loader_workers(device: torch.device, threads: int, workers: int | None) -> int:
    """Worker processes: on CUDA all but one of the job's CPUs feed the GPU; on CPU the
    main process loads (the job's threads are busy computing)."""
    if workers is not None:
        return workers
    return max(1, threads - 1) if device.type == "cuda" else 0


def init_worker(worker_id: int) -> None:
    # Batches are seeded by (epoch, batch), so worker seeds only cover stray global draws.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    cv2.setNumThreads(1)
    ignore_stop_signals()


def make_loader(data: CacheBatches, sampler: EpochBatches, workers: int, pin: bool,
                seed: int) -> DataLoader:
    # The loader's own generator keeps its per-epoch worker-seed draw off the global RNG,
    # whose state (dropout) a resumed run restores exactly.
    return DataLoader(data, batch_sampler=sampler, collate_fn=unwrap, num_workers=workers,
                      pin_memory=pin, persistent_workers=workers > 0, worker_init_fn=init_worker,
                      generator=torch.Generator().manual_seed(seed))


@dataclass
class Cell:
    """Everything of one training cell that is built once and never saved."""

    s: TrainSettings
    fold: int
    metric: str
    cache: Cache
    train_idx: np.ndarray
    val_idx: np.ndarray
    device: torch.device
    model: nn.Module
    loss_fn: nn.Module
    amp: Amp
    input_size: int  # model input side (px)
    train_sampler: EpochBatches
    train_loader: DataLoader
    val_loader: DataLoader
    backbone: list[nn.Parameter]
    head: list[nn.Parameter]
    backbone_mods: list[nn.Module]
    blocks: list[nn.Module]  # the backbone's blocks, input to output (``unfreeze_blocks``)

    @property
    def refit(self) -> bool:
        """A refit on every training image: no validation fold."""
        return len(self.val_idx) == 0

    def phase(self, number: int) -> Phase:
        return build_phase(number, self.s, self.backbone, self.head, self.backbone_mods,
                           self.blocks)



def monitored_metric(s: TrainSettings) -> str:
    valid = TASK_METRICS[s.task]
    metric = s.monitor or valid[0]
    if metric not in valid:
        raise ConfigError(f"{s.task}.selection_metric '{metric}' is unknown; valid: {list(valid)}")
    return metric


def make_loss(s: TrainSettings, cache: Cache, train_idx: np.ndarray) -> nn.Module:
    """The cell's loss. Segmentation losses get the training fold's per-image pixel counts
    (n, K) — build_loss hands them to the losses that take them (``wce``) — so class weights
    never see the validation fold, and ``median`` weighting sees which images hold each class."""
    name = s.criterion or s.loss
    if s.task == "segmentation":
        counts = pixel_counts(cache.masks, train_idx, len(cache.class_names) + 1)
        return build_loss(s.task, name, class_counts=counts, **s.loss_params)
    return build_loss(s.task, name, **s.loss_params)


def build_loaders(cell_seed: int, s: TrainSettings, cache: Cache, idx: tuple[np.ndarray, ...],
                  size: int, workers: int, pin: bool) -> tuple[EpochBatches, DataLoader,
                                                               DataLoader]:
    train_idx, val_idx = idx
    if s.crop_size is not None and s.task != "segmentation":
        raise ConfigError(f"crop_size {s.crop_size} is set for {s.task} model {s.model}: crops "
                          "can cut a labelled object out of the image; set it for "
                          "segmentation only (its train: block or variant)")
    # A variant at its own side reads the originals resized once, not the resized cache;
    # validation keeps the cache's masks, so every cell is scored at the same side.
    images, masks = cache.resampled(size, masks=s.task == "segmentation")  # masks: None else
    if size != cache.image_size:
        log.info("resampled %d images from the originals to %d px", len(images), size)
    transform = build_transform(s.augment, size, s.crop_size)
    train = CacheBatches(images, masks, cache.labels, train_idx, s.task, transform,
                         seed=cell_seed)
    val = CacheBatches(images, cache.masks, cache.labels, val_idx, s.task)
    sampler = EpochBatches(len(train_idx), s.batch_size, seed=cell_seed, shuffle=True)
    val_sampler = EpochBatches(len(val_idx), s.batch_size * 2, shuffle=False)
    # Validation batches are single memory-map reads (no augmentation): the main process
    # keeps up, and no second set of idle worker processes is held for them.
    return (sampler, make_loader(train, sampler, workers, pin, cell_seed),
            make_loader(val, val_sampler, 0, pin, cell_seed))


def setup_cell(s: TrainSettings, cache_dir: str | Path, folds_csv: str | Path | None,
               fold: int | None, threads: int, workers: int | None) -> Cell:
    """The cell of ``fold``; ``fold`` None: a refit on every training image (no folds file)."""
    device = pick_device()
    seed = s.seed + (fold or 0)
    seed_everything(seed, threads, device)
    cache = load_cache(cache_dir)
    if fold is None or folds_csv is None:
        idx = (np.arange(len(cache)), np.zeros(0, np.int64))
    else:
        idx = fold_split(folds_csv, cache.ids, fold)
    amp = amp_for(s, device)
    model = build_model(s.task, s.arch, num_outputs(s.task, len(cache.class_names)),
                        class_names=cache.class_names, **s.model_params)
    fmt = torch.channels_last if amp.channels_last else torch.preserve_format
    model = model.to(device, memory_format=fmt)
    backbone, head = param_groups(model)
    size = s.image_size or cache.image_size
    n_workers = loader_workers(device, threads, workers)
    loaders = build_loaders(seed, s, cache, idx, size, n_workers, device.type == "cuda")
    log.info("cell %s/%s/%s %s: %d train, %d val images at %d px on %s (amp %s, "
             "channels_last %s, %d loader workers)", s.task, s.model, s.loss,
             "refit" if fold is None else f"fold {fold}",
             len(idx[0]), len(idx[1]), size, device, amp.dtype, amp.channels_last, n_workers)
    return Cell(s, -1 if fold is None else fold, monitored_metric(s), cache, idx[0], idx[1],
                device, model, make_loss(s, cache, idx[0]), amp, size, *loaders, backbone, head,
                backbone_modules(model), backbone_blocks(model))


# ----------------------------------------------------------------------------- steps


def model_input(cell: Cell, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """uint8 batch from the loader -> normalised model input and target on the device."""
    x = x.to(cell.device, non_blocking=True)
    y = y.to(cell.device, non_blocking=True)
    x = normalize_batch(x, None, cell.amp.channels_last)  # the loaders deliver input sides
    return x, (y.long() if cell.s.task == "segmentation" else y)


def as_float(out: torch.Tensor | dict[str, torch.Tensor]) -> Any:
    # Losses run in fp32 whatever autocast computed the logits in (Dice/Lovász sums, log).
    if isinstance(out, dict):
        return {k: v.float() for k, v in out.items()}
    return out.float()


def train_step(cell: Cell, phase: Phase, x: torch.Tensor, y: torch.Tensor,
               scores: TrainingScores | None = None) -> torch.Tensor:
    x, y = model_input(cell, x, y)
    with cell.amp.autocast():
        out = cell.model(x)
    out = as_float(out)
    loss = cell.loss_fn(out, y)
    if scores is not None:
        scores.add(out["out"] if isinstance(out, dict) else out, y)
    phase.optimizer.zero_grad(set_to_none=True)
    cell.amp.scaler.scale(loss).backward()
    cell.amp.scaler.step(phase.optimizer)  # skipped (fp16) when gradients overflowed
    cell.amp.scaler.update()
    return loss.detach()


@torch.no_grad()
def evaluate(cell: Cell) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean loss, probabilities and hard predictions over the validation fold.

    classification: probs (N, C) float32, preds (N, C) bool at 0.5; segmentation: probs
    (N, K, S, S) uint8 (x / 255) and preds (N, S, S) arg-max at the cache side S (logits of a
    model run at another side are resized bilinearly first).
    """
    if cell.refit:
        return float("nan"), np.zeros(0), np.zeros(0)
    cell.model.eval()
    total = torch.zeros((), dtype=torch.float64, device=cell.device)
    probs, preds = [], []
    for x_raw, y_raw in cell.val_loader:
        x, y = model_input(cell, x_raw, y_raw)
        with cell.amp.autocast():
            out = cell.model(x)
        logits = as_float(out["out"] if isinstance(out, dict) else out)
        if cell.s.task == "segmentation" and logits.shape[-1] != cell.cache.image_size:
            logits = F.interpolate(logits, size=y.shape[-2:], mode="bilinear",
                                   align_corners=False)
        total += cell.loss_fn(logits, y).double() * len(x)
        p, q = output_probs(cell.s.task, logits)
        probs.append(p)
        preds.append(q)
    return total.item() / len(cell.val_idx), np.concatenate(probs), np.concatenate(preds)


def output_probs(task: str, logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    if task == "classification":
        p = logits.sigmoid()
        return p.cpu().numpy(), (p >= 0.5).cpu().numpy()
    p = logits.softmax(dim=1)
    return ((p * PROB_SCALE).round().to(torch.uint8).cpu().numpy(),
            p.argmax(dim=1).to(torch.uint8).cpu().numpy())


# ----------------------------------------------------------------------------- the loop


@dataclass
class RunState:
    """Where a run stands: everything of the loop that a resume restores (plain types)."""

    epoch: int = 1  # the epoch to run next (1-based)
    batch: int = 0  # batches of ``epoch`` already done (> 0 after a mid-epoch stop)
    loss_sum: float = 0.0  # training loss summed over the images of those batches
    loss_count: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # metrics.csv rows so far
    best: float = -np.inf
    best_epoch: int = 0
    best_file: str = ""  # best_e{k}.pt in the state directory
    watched: float = -np.inf  # best value of what early stopping watches (``watch``)
    stale: int = 0  # epochs since the watched value last improved (early stopping)
    finished: bool = False  # early-stopped or all epochs done
    resumed_from: int = 0  # epochs already completed when this process started


@dataclass
class Run:
    """A run in progress: its saveable state plus the live objects it drives."""

    state: RunState
    phase: Phase
    best: dict[str, Any] | None = None  # the best epoch's checkpoint payload
    store: StateStore | None = None
    stop: StopFlag = field(default_factory=StopFlag)
    callback: Callback | None = None
    train_scores: TrainingScores | None = None  # of the epoch in progress
    metrics_path: str | Path | None = None  # metrics.csv, rewritten after every epoch


def snapshot(cell: Cell, run: Run) -> dict[str, Any]:
    """The resume state (vocflow.resume) of ``run`` now."""
    return {"settings": cell.s.to_dict(), "run": asdict(run.state), "phase": run.phase.number,
            "model": cell.model.state_dict(), "optimizer": run.phase.optimizer.state_dict(),
            "scheduler": run.phase.scheduler.state_dict(),
            "scaler": cell.amp.scaler.state_dict(), "rng": rng_state(),
            "train_scores": run.train_scores.state() if run.train_scores is not None else {}}


def save(cell: Cell, run: Run) -> None:
    if run.store is not None:
        run.store.save(snapshot(cell, run), run.state.best_file)


def start(cell: Cell, store: StateStore | None) -> Run:
    """A fresh run, or the saved one when ``store`` holds a state of these settings."""
    first = 1 if freeze_epochs(cell.s, cell.backbone) > 0 else 2
    saved = store.load(cell.s.to_dict()) if store is not None else None
    if saved is None:
        return Run(RunState(), cell.phase(first), store=store)
    state = RunState(**saved["run"])
    cell.model.load_state_dict(saved["model"])
    phase = cell.phase(saved["phase"])
    phase.optimizer.load_state_dict(saved["optimizer"])
    phase.scheduler.load_state_dict(saved["scheduler"])
    cell.amp.scaler.load_state_dict(saved["scaler"])
    set_rng_state(saved["rng"])
    state.resumed_from = state.epoch - 1
    best = store.load_best(state.best_file) if state.best_file else None
    log.info("resumed at epoch %d (batch %d) from %s: %d epochs were already done",
             state.epoch, state.batch, store.dir, state.resumed_from)
    run = Run(state, phase, best=best, store=store, train_scores=training_scores(cell))
    if state.batch:  # the interrupted epoch's training scores continue
        run.train_scores.restore(saved.get("train_scores") or {}, cell.device)
    return run


def training_scores(cell: Cell) -> TrainingScores:
    return TrainingScores(cell.s.task, num_outputs(cell.s.task, len(cell.cache.class_names)))


def train_epoch(cell: Cell, run: Run) -> None:
    """Train the rest of epoch ``run.state.epoch``; on a stop signal save and exit."""
    st = run.state
    train_mode(cell.model, run.phase)
    cell.train_sampler.set_epoch(st.epoch, start=st.batch)
    bar = BatchProgress(len(cell.train_sampler), f"epoch {st.epoch}", initial=st.batch)
    loss_sum = torch.tensor(st.loss_sum, dtype=torch.float64, device=cell.device)
    if st.batch == 0 or run.train_scores is None:
        run.train_scores = training_scores(cell)
    for x, y in cell.train_loader:
        loss = train_step(cell, run.phase, x, y, run.train_scores)
        loss_sum += loss.double() * len(x)  # stays on the device: no sync per batch
        st.batch, st.loss_count = st.batch + 1, st.loss_count + len(x)
        bar.step(len(x), loss.item() if bar.wants_loss() else None)
        if run.callback is not None:
            run.callback("batch_end", st.epoch, st.batch, cell.model)
        if run.stop:
            st.loss_sum = loss_sum.item()
            bar.close()
            stop_now(cell, run)
    st.loss_sum = loss_sum.item()
    bar.close()


def stop_now(cell: Cell, run: Run) -> None:
    save(cell, run)
    signum = run.stop.signum or 0
    log.warning("stop signal %d: state saved at epoch %d batch %d; exiting to be re-run",
                signum, run.state.epoch, run.state.batch)
    raise Interrupted(signum)


def end_epoch(cell: Cell, run: Run, lr: float, seconds: float) -> None:
    """Validate, step the schedule, keep the best, append the metrics row."""
    st = run.state
    train_loss = st.loss_sum / max(st.loss_count, 1)
    train_scores = run.train_scores.scores() if run.train_scores is not None else {}
    val_loss, probs, preds = evaluate(cell)
    if cell.refit:  # no validation fold: the training-set scores steer, the last epoch is kept
        scores, value, loss = {}, train_scores.get(cell.metric, float("nan")), train_loss
    else:
        scores = split_scores(cell.s.task, cell.cache, cell.val_idx, probs, preds)
        value, loss = scores[cell.metric], val_loss
    watched = -loss if cell.s.watch == "loss" else value  # larger is better either way
    run.phase.step(watched)
    if watched > st.watched:
        st.watched, st.stale = watched, 0
    else:
        st.stale += 1
    improved = value > st.best or run.best is None or cell.refit
    if improved:
        st.best, st.best_epoch = value, st.epoch
        run.best = checkpoint_payload(cell.model, cell.s, cell.cache.class_names,
                                      cell.cache.image_size, cell.input_size, st.epoch,
                                      cell.metric, value)
        if run.store is not None:
            st.best_file = run.store.save_best(st.epoch, run.best)
    st.rows.append({"epoch": st.epoch, "train_loss": train_loss, "val_loss": val_loss,
                    **{f"train_{k}": v for k, v in train_scores.items()},
                    **{f"val_{k}": v for k, v in scores.items()},
                    "lr": lr, "phase": run.phase.number, "resumed_from": st.resumed_from,
                    "seconds": seconds})
    log.info("epoch %d/%d train_loss %.4f train_%s %.4f val_loss %.4f val_%s %.4f lr %.2g%s",
             st.epoch, cell.s.epochs, train_loss, cell.metric,
             train_scores.get(cell.metric, float("nan")), val_loss, cell.metric,
             scores.get(cell.metric, float("nan")), lr,
             " *" if improved and not cell.refit else "")


def next_epoch(cell: Cell, run: Run) -> None:
    """Advance to the next epoch (switching phase after the frozen epochs) or finish."""
    st = run.state
    if st.epoch == freeze_epochs(cell.s, cell.backbone) and st.epoch < cell.s.epochs:
        run.phase = cell.phase(2)
        log.info("backbone unfrozen after epoch %d; lr %.2g", st.epoch, cell.s.lr)
    if cell.s.patience and st.stale >= cell.s.patience and not cell.refit:
        watched = "loss" if cell.s.watch == "loss" else cell.metric
        log.info("early stop: no val_%s gain for %d epochs; best epoch %d", watched,
                 st.stale, st.best_epoch)
        st.finished = True
    st.finished = st.finished or st.epoch >= cell.s.epochs
    st.epoch, st.batch, st.loss_sum, st.loss_count = st.epoch + 1, 0, 0.0, 0


def fit(cell: Cell, run: Run) -> None:
    st = run.state
    remaining = range(st.epoch, cell.s.epochs + 1) if not st.finished else range(0)
    for _ in epochs_bar(remaining, total=cell.s.epochs, initial=st.epoch - 1):
        start_time, lr = time.perf_counter(), run.phase.lr()
        train_epoch(cell, run)
        end_epoch(cell, run, lr, time.perf_counter() - start_time)
        next_epoch(cell, run)
        save(cell, run)
        write_rows(cell, run)  # after the state: a resumed run rewrites any rows missing here
        if run.callback is not None:
            run.callback("epoch_end", st.epoch - 1, 0, cell.model)
        if run.stop:
            stop_now(cell, run)
        if st.finished:
            break


def cell_fingerprint(cell: Cell) -> str:
    ids = [cell.cache.ids[i] for i in cell.val_idx]
    return fingerprint(cell.s.to_dict(), fold=cell.fold, val_ids=ids, n=len(cell.cache),
                       image_size=cell.cache.image_size)


def write_rows(cell: Cell, run: Run) -> None:
    """metrics.csv with the epochs done so far (the final file once the run has finished)."""
    if run.metrics_path is not None and run.state.rows:
        write_metrics(run.metrics_path, run.state.rows, asdict(cell.s), cell.fold, cell.metric)


def log_attempt() -> None:
    """Where this attempt runs: vocflow.status checks a local pid and maps SLURM jobs."""
    job = os.environ.get("SLURM_JOB_ID", "")
    log.info("attempt on host %s pid %d%s", socket.gethostname(), os.getpid(),
             f" slurm job {job}" if job else "")


@contextlib.contextmanager
def signals_if(enabled: bool, run: Run) -> Iterator[None]:
    if not enabled:
        yield
        return
    with stop_signals() as flag:
        run.stop = flag
        yield


def train_cell(cache_dir: str | Path, folds_csv: str | Path, fold: int, settings: dict[str, Any],
               checkpoint_path: str | Path, metrics_path: str | Path, oof_path: str | Path,
               threads: int = 1, state_dir: str | Path | None = None,
               workers: int | None = None, callback: Callback | None = None,
               state_root: str | Path | None = None) -> None:
    """Train one cell and write its checkpoint, per-epoch metrics CSV and OOF probabilities.

    ``state_dir``: where the resume state lives (see the module docstring); None = no resume.
    ``workers``: DataLoader worker processes; None = sized from ``threads`` and the device.
    ``state_root``: the folder of all cells' states; emptied parents up to it are removed.
    """
    log_attempt()
    s = TrainSettings.from_dict(settings)
    cell = setup_cell(s, cache_dir, folds_csv, fold, threads, workers)
    run_cell(cell, checkpoint_path, metrics_path, oof_path, state_dir, callback, state_root)


def refit_cell(cache_dir: str | Path, metrics_csvs: list[str | Path], settings: dict[str, Any],
               seed: int, checkpoint_path: str | Path, metrics_path: str | Path,
               threads: int = 1, state_dir: str | Path | None = None,
               workers: int | None = None, state_root: str | Path | None = None) -> None:
    """Train the selected cell's recipe (``settings``) on every training image for the epoch
    count its folds chose (``metrics_csvs``: their metrics.csv files), with refit seed ``seed``
    (0, 1, ...); write the last epoch's checkpoint and the per-epoch metrics (no OOF)."""
    log_attempt()
    epochs = refit_epochs(metrics_csvs)
    # Seeds 1000 + r never meet the folds' s.seed + k.
    s = TrainSettings.from_dict({**settings, "epochs": epochs, "patience": 0,
                                 "seed": int(settings.get("seed", 0)) + 1000 + seed})
    log.info("refit %d of %s/%s/%s on every training image for %d epochs (the folds' mean best "
             "epoch)", seed, s.task, s.model, s.loss, epochs)
    cell = setup_cell(s, cache_dir, None, None, threads, workers)
    run_cell(cell, checkpoint_path, metrics_path, None, state_dir, None, state_root)


def run_cell(cell: Cell, checkpoint_path: str | Path, metrics_path: str | Path,
             oof_path: str | Path | None, state_dir: str | Path | None,
             callback: Callback | None, state_root: str | Path | None) -> None:
    """Fit ``cell`` (resuming a saved state) and write its outputs."""
    store = (StateStore(state_dir, cell_fingerprint(cell), state_root)
             if state_dir is not None else None)
    run = start(cell, store)
    run.callback, run.metrics_path = callback, metrics_path
    write_rows(cell, run)  # a resumed run's earlier epochs, at once
    with signals_if(store is not None, run):
        fit(cell, run)
    finish(cell, run, checkpoint_path, metrics_path, oof_path)
    if store is not None:
        store.clear()


def finish(cell: Cell, run: Run, checkpoint_path: str | Path, metrics_path: str | Path,
           oof_path: str | Path | None) -> None:
    """Restore the best weights, compute their OOF probabilities, write the outputs."""
    assert run.best is not None
    cell.model.load_state_dict(run.best["state_dict"])
    torch_save(checkpoint_path, run.best)
    write_metrics(metrics_path, run.state.rows, asdict(cell.s), cell.fold, cell.metric)
    if oof_path is not None:
        _, probs, _ = evaluate(cell)
        write_oof(oof_path, [cell.cache.ids[i] for i in cell.val_idx], cell.val_idx, probs)
    resumed = max((row["resumed_from"] for row in run.state.rows), default=0)
    log.info("best epoch %d (val_%s %.4f); %d epochs came from a resumed state",
             run.state.best_epoch, cell.metric, run.state.best, resumed)
