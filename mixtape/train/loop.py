"""``mixtape train``: a small model on a shard stream, resumable exactly, single-process or under torchrun.

AdamW with linear warm-up and cosine decay, gradient clipping, mixed precision on GPU, periodic evaluation
with early stopping on the clip-level validation metric, and checkpoints that hold the model, optimiser,
schedule, RNG states and every rank's stream position, so ``--resume`` continues with exactly the samples
an uninterrupted run would have seen.

The parts: :mod:`~mixtape.train.setup` (dataset, model, optimiser, stream, the run's length),
:mod:`~mixtape.train.resume` (the run's state and its checkpoints), :mod:`~mixtape.train.step` (one
optimiser step), :mod:`~mixtape.train.validation` (evaluation and patience). This module runs the epochs.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from mixtape.hashing import rng_for
from mixtape.train import distributed as D
from mixtape.train.checkpoint import BEST, load_checkpoint
from mixtape.train.config import TrainConfig
from mixtape.train.data import StreamStats, StreamTracker
from mixtape.train.resume import RunState, config_dict, restore, resumed_config, write_checkpoint
from mixtape.train.setup import Run, TrainError, check_config, lr_at, prepare, resolve_dataset
from mixtape.train.step import optimiser_step
from mixtape.train.validation import evaluate_now

__all__ = ["TrainConfig", "TrainError", "TrainResult", "lr_at", "resolve_dataset", "train"]


@dataclass
class TrainResult:
    steps: int
    samples: int
    epochs: int
    first_loss: float
    final_loss: float
    samples_per_second: float
    valid: dict[str, Any]
    score: float | None
    parameters: int
    checkpoint: str
    stopped_early: bool
    interrupted: bool
    stream: dict[str, Any]
    losses: list[float] = field(repr=False, default_factory=list)


def train(cfg: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    dd = D.init_distributed(cfg.device)
    try:
        return _train(cfg, dd, log)
    finally:
        D.shutdown(dd)


def _train(cfg: TrainConfig, dd: D.Dist, log: Callable[[str], None]) -> TrainResult:
    check_config(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt = load_checkpoint(cfg.resume) if cfg.resume else None
    if ckpt is not None:
        cfg = resumed_config(cfg, ckpt)
    run = prepare(cfg, dd, log, ckpt)
    resumed = restore(run, ckpt)
    invocation = _Invocation(run, resumed.state, resumed.stream, resumed.epoch_stats)
    while not invocation.done:
        invocation.run_epoch()
    return invocation.finish()


class _Invocation:
    """One command's share of a run: it starts where the checkpoint stopped and ends at the run's end, at
    early stopping, or after ``--stop-after`` steps."""

    def __init__(self, run: Run, state: RunState, stream: dict[str, Any] | None, epoch_stats: dict[str, Any]):
        self.run, self.state = run, state
        self.stream_state = stream  # where this rank's stream resumes, for the first epoch only
        self.epoch_stats_before = epoch_stats  # the interrupted epoch's counts before the break
        self.final_state: dict[str, Any] = stream or {"epoch": state.epoch}
        self.loss_parts: dict[str, list[float]] = {}
        self.stats_total = StreamStats()
        self.started = time.monotonic()
        self.steps_this_run = 0
        self.stopped_early = self.interrupted = False
        self.last_report: dict[str, Any] | None = None
        self.last_eval_step = -1
        self.tracker: StreamTracker | None = None
        self.done = state.step >= run.step_limit
        self.log_every = max(1, run.total // 10)
        self.bar = tqdm(total=run.total, initial=state.step, desc="train", unit="step", dynamic_ncols=True,
                        mininterval=1.0, disable=not (run.dd.is_main and sys.stderr.isatty()))
        self.trace: IO[str] | None = None
        if run.cfg.trace:
            self.trace = open(run.out / (f"trace-rank{run.dd.rank}.jsonl" if run.dd.enabled else "trace.jsonl"), "a")

    def run_epoch(self) -> None:
        run, state, cfg = self.run, self.state, self.run.cfg
        run.stream.set_epoch(state.epoch, self.stream_state)
        tracker = self.tracker = StreamTracker(max(1, cfg.num_workers), state.epoch, self.stream_state)
        if self.epoch_stats_before:
            tracker.stats.add(self.epoch_stats_before)
            self.epoch_stats_before = {}
        self.stream_state = None
        # the loader gets its own generator: drawing worker seeds from the global RNG would shift the dropout
        # sequence of a resumed run (the stream itself is seeded by sample keys, not by torch)
        seed = int(rng_for(cfg.seed, f"loader/{state.epoch}").integers(0, 2**31))
        loader = iter(DataLoader(run.stream, batch_size=None, num_workers=cfg.num_workers,
                                 generator=torch.Generator().manual_seed(seed)))
        epoch_steps = 0
        exhausted = False
        while True:
            batch = _next_real(loader, tracker)
            if not D.all_have_batch(run.dd, batch is not None):
                exhausted = True
                break
            assert batch is not None
            self._train_on(batch, tracker)
            epoch_steps += 1
            if self._stop_now():
                break
        self.stats_total.add(tracker.stats.as_dict())
        del loader  # stops this epoch's loader workers now
        if exhausted:
            self._end_epoch(tracker, epoch_steps)
        else:
            self.final_state = tracker.state()

    def _train_on(self, batch: dict[str, Any], tracker: StreamTracker) -> None:
        run, state, cfg = self.run, self.state, self.run.cfg
        loss, parts = optimiser_step(run, batch)
        tracker.consume(batch)
        if self.trace is not None:
            self.trace.write(json.dumps({"step": state.step, "keys": batch["keys"]}) + "\n")
        state.step += 1
        self.steps_this_run += 1
        state.samples += batch["audio"].shape[0] * run.dd.world_size
        state.losses.append(loss)
        for k, v in parts.items():
            self.loss_parts.setdefault(k, []).append(v)
        self._progress()
        evaluated = False
        if cfg.eval_every and state.step % cfg.eval_every == 0 and state.step < run.total:
            self._evaluate(tracker.state())
            evaluated = True
            if cfg.patience and state.bad_evals >= cfg.patience:
                self.stopped_early = True
        if (cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0) or evaluated:
            state.epoch_stream = tracker.stats.as_dict()
            write_checkpoint(run, state, tracker.state())

    def _progress(self) -> None:
        run, state = self.run, self.state
        rate = state.samples / max(1e-9, time.monotonic() - self.started)
        recent = float(np.mean(state.losses[-10:]))
        self.bar.set_postfix(loss=f"{recent:.4f}", sps=f"{rate:.0f}", epoch=state.epoch)
        self.bar.update(1)
        if state.step % self.log_every == 0 or state.step == run.total:
            lr = run.sched.get_last_lr()[0]
            run.log.event({"event": "train", "step": state.step, "epoch": state.epoch, "loss": recent, "lr": lr,
                           "samples_per_second": rate,
                           **{f"loss_{k}": float(np.mean(v[-10:])) for k, v in self.loss_parts.items()}})
            if self.bar.disable:
                run.log.say(f"step {state.step}/{run.total} epoch {state.epoch} loss {recent:.4f} "
                            f"lr {lr:.2e} {rate:.0f} samples/s")

    def _evaluate(self, stream_state: dict[str, Any]) -> None:
        """Evaluate now; a new best is checkpointed with the stream where it stands."""
        self.last_report = evaluate_now(self.run, self.state)
        self.last_eval_step = self.state.step
        if self.last_report["improved"]:
            write_checkpoint(self.run, self.state, stream_state, BEST)

    def _stop_now(self) -> bool:
        if self.state.step >= self.run.step_limit or self.stopped_early:
            self.done = True
        elif self.run.cfg.stop_after is not None and self.steps_this_run >= self.run.cfg.stop_after:
            self.interrupted = self.done = True
        return self.done

    def _end_epoch(self, tracker: StreamTracker, epoch_steps: int) -> None:
        run, state, cfg = self.run, self.state, self.run.cfg
        if epoch_steps == 0:
            raise TrainError(f"no training batch could be read from {cfg.shards} (corrupt samples: "
                             f"{tracker.stats.corrupt}; {tracker.stats.errors[:3]})")
        run.log.event({"event": "epoch", "epoch": state.epoch, "step": state.step, "stream": tracker.stats.as_dict()})
        if tracker.stats.corrupt:
            run.log.say(f"epoch {state.epoch}: skipped {tracker.stats.corrupt} corrupt sample(s)/shard(s): "
                        + "; ".join(tracker.stats.errors[:3]))
        state.epoch += 1
        if cfg.epochs is not None and state.epoch >= cfg.epochs:
            self.done = True
        if not cfg.eval_every and cfg.steps is None and not self.done:
            self._evaluate({"epoch": state.epoch})
            if cfg.patience and state.bad_evals >= cfg.patience:
                self.stopped_early = self.done = True
        self.final_state = {"epoch": state.epoch}

    def finish(self) -> TrainResult:
        """The final evaluation (unless one ran at this very step), the last checkpoint and metrics.json."""
        run, state = self.run, self.state
        self.bar.close()
        if self.trace is not None:
            self.trace.close()
        elapsed = time.monotonic() - self.started
        if not self.interrupted and self.last_eval_step != state.step:
            self._evaluate(self.final_state)
        state.finished = not self.interrupted
        partial = self.interrupted and self.final_state.get("positions") and self.tracker is not None
        state.epoch_stream = self.tracker.stats.as_dict() if partial and self.tracker is not None else {}
        ckpt = write_checkpoint(run, state, self.final_state)
        result = _result(run, state, self, elapsed, ckpt)
        if run.dd.is_main:
            with open(run.out / "metrics.json", "w", encoding="utf-8") as f:
                json.dump({**{k: v for k, v in asdict(result).items() if k != "losses"}, "losses": state.losses,
                           "history": state.history, "config": config_dict(run.cfg)}, f, indent=1, default=float)
            self._warn_about_stream()
        run.log.close()
        return result

    def _warn_about_stream(self) -> None:
        run, stats = self.run, self.stats_total
        if stats.corrupt:
            run.log.say(f"skipped {stats.corrupt} corrupt sample(s)/shard(s) in training")
        if stats.short:
            run.log.say(f"warning: {stats.short} of {stats.samples} samples read were shorter than the "
                        f"{run.window / run.sr:.2f} s input and were padded with silence: lower --crop-seconds or "
                        "build longer snippets")


def _result(run: Run, state: RunState, inv: _Invocation, elapsed: float, ckpt: str) -> TrainResult:
    losses = state.losses
    window_n = max(1, min(20, len(losses) // 4))
    report = inv.last_report or {}
    return TrainResult(
        steps=state.step, samples=state.samples_before + state.samples, epochs=state.epoch,
        first_loss=float(np.mean(losses[:window_n])) if losses else math.nan,
        final_loss=float(np.mean(losses[-window_n:])) if losses else math.nan,
        samples_per_second=state.samples / elapsed if elapsed > 0 else 0.0, valid=report, score=report.get("score"),
        parameters=run.parameters, checkpoint=ckpt, stopped_early=inv.stopped_early, interrupted=inv.interrupted,
        stream=inv.stats_total.as_dict(), losses=losses)


def _next_real(loader: Any, tracker: StreamTracker) -> dict[str, Any] | None:
    """The next batch with samples; workers' final stats-only batches are folded into the tracker."""
    for batch in loader:
        if batch["end"]:
            tracker.consume(batch)
            continue
        return batch
    return None
