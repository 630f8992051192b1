"""What a checkpoint carries and how a run picks it up again, so ``--resume`` sees exactly the samples,
dropout masks and schedule an uninterrupted run would have.

:class:`RunState` is everything that changes as a run goes; :func:`write_checkpoint` and :func:`restore`
are each other's inverse. Settings that shape the model and the data order come from the checkpoint, the
run's length and its machinery from the command line (:func:`resumed_config`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from mixtape.train import distributed as D
from mixtape.train.checkpoint import CHECKPOINT, save_checkpoint
from mixtape.train.config import FrontendConfig, TrainConfig
from mixtape.train.setup import Run, TrainError

# what a resumed run takes from its command line rather than from the checkpoint
_FROM_COMMAND_LINE = {"steps", "epochs", "out", "stop_after", "resume", "trace", "threads", "device", "patience",
                      "eval_every", "checkpoint_every", "num_workers", "shards", "valid_shards", "card", "force",
                      "verify_remote"}


@dataclass
class RunState:
    step: int = 0
    epoch: int = 0
    best: float | None = None  # the best validation score so far
    bad_evals: int = 0  # evaluations since the best one, for --patience
    history: list[dict[str, Any]] = field(default_factory=list)  # every evaluation's step, epoch and score
    samples_before: int = 0  # samples the run's earlier invocations trained on
    samples: int = 0  # samples this invocation trained on (all ranks)
    losses: list[float] = field(default_factory=list)  # the whole run's, so summaries ignore interruptions
    epoch_stream: dict[str, Any] = field(default_factory=dict)  # this epoch's stream counts at the checkpoint
    finished: bool = False  # the run reached its end: a resume then has nothing to do


@dataclass
class Resumed:
    """Where this rank's stream stopped, and the interrupted epoch's stream counts before the stop."""

    state: RunState
    stream: dict[str, Any] | None
    epoch_stats: dict[str, Any]


def resumed_config(cfg: TrainConfig, ckpt: dict[str, Any]) -> TrainConfig:
    """The checkpoint's settings for everything that shapes the model and the data order; the run's own
    length (steps / epochs), interruption, output and worker settings come from the command line."""
    saved = dict(ckpt["config"])
    saved["frontend"] = FrontendConfig(**saved["frontend"])
    known = {k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__}
    return TrainConfig(**{**known, **{k: getattr(cfg, k) for k in _FROM_COMMAND_LINE}})


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["frontend"] = cfg.frontend.as_dict()
    return d


def restore(run: Run, ckpt: dict[str, Any] | None) -> Resumed:
    """Load a checkpoint into the run's model, optimiser, schedule and this rank's RNG; a fresh run when
    ``ckpt`` is None. A finished run, or one written by another number of ranks or loader workers, is an
    error naming what to pass instead."""
    if ckpt is None:
        return Resumed(RunState(), None, {})
    cfg, dd = run.cfg, run.dd
    run.model.load_state_dict(ckpt["model"])
    run.opt.load_state_dict(ckpt["optimizer"])
    run.sched.load_state_dict(ckpt["scheduler"])
    run.scaler.load_state_dict(ckpt.get("scaler", {}) or run.scaler.state_dict())
    streams = ckpt["stream"]
    if len(streams) != dd.world_size:
        raise TrainError(f"the checkpoint was written by {len(streams)} rank(s); resume with the same number "
                         f"(now {dd.world_size})")
    stream = streams[dd.rank]
    if stream.get("positions") and int(stream.get("num_workers", 1)) != max(1, cfg.num_workers):
        raise TrainError(f"the checkpoint stopped mid-epoch with {stream['num_workers']} loader "
                         f"worker(s); resume with --loader-workers {stream['num_workers']}")
    rng = ckpt.get("rng", [])
    if dd.rank < len(rng):
        torch.set_rng_state(rng[dd.rank])
    state = RunState(step=int(ckpt["step"]), epoch=int(stream["epoch"]), best=ckpt.get("best"),
                     bad_evals=int(ckpt.get("bad_evals", 0)), history=list(ckpt.get("history", [])),
                     samples_before=int(ckpt.get("samples", 0)), losses=[float(x) for x in ckpt.get("losses", [])])
    if state.step >= run.step_limit or (cfg.epochs is not None and state.epoch >= cfg.epochs):
        raise TrainError(f"{cfg.resume} is a finished run ({state.step} steps, {state.epoch} epoch(s)): nothing "
                         f"to resume; pass a larger --steps (or --epochs) than it ran to extend it")
    run.log.say(f"resumed from {cfg.resume} at step {state.step}, epoch {state.epoch}")
    epoch_stats = dict(ckpt.get("epoch_stream") or {}) if stream.get("positions") else {}
    return Resumed(state, stream, epoch_stats)


def write_checkpoint(run: Run, state: RunState, stream: dict[str, Any], name: str = CHECKPOINT) -> str:
    """Every rank's stream position and RNG state with rank 0's model, optimiser and schedule (a collective:
    every rank calls it)."""
    streams = D.gather(run.dd, stream)
    rngs = D.gather(run.dd, torch.get_rng_state())
    total_samples = state.samples_before + D.sum_int(run.dd, state.samples)
    path = str(run.out / name)
    if run.dd.is_main:
        card = run.card
        save_checkpoint(path, {
            "model": run.model.state_dict(), "optimizer": run.opt.state_dict(), "scheduler": run.sched.state_dict(),
            "scaler": run.scaler.state_dict(), "rng": rngs, "stream": streams, "step": state.step,
            "samples": total_samples, "best": state.best, "bad_evals": state.bad_evals, "history": state.history,
            "config": config_dict(run.cfg), "losses": state.losses, "finished": state.finished,
            "epoch_stream": state.epoch_stream, "model_spec": run.spec.as_dict(), "tasks": run.tasks.as_list(),
            "window": run.window, "vocabularies": run.encoder.vocabularies(),
            "dataset": {"name": card.get("name"), "version": card.get("version"), "spec_hash": card.get("spec_hash")}})
    return path
