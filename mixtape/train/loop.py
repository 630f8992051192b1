"""``mixtape train``: a small model on a shard stream, resumable exactly, single-process or under torchrun.

AdamW with linear warm-up and cosine decay, gradient clipping, mixed precision on GPU, periodic evaluation
with early stopping on the clip-level validation metric, and checkpoints that hold the model, optimiser,
schedule, RNG states and every rank's stream position, so ``--resume`` continues with exactly the samples
an uninterrupted run would have seen.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from mixtape.dataset.card import read_card, shard_checks, shard_names
from mixtape.dataset.names import CARD_NAME
from mixtape.errors import MixtapeError
from mixtape.hashing import rng_for
from mixtape.train import distributed as D
from mixtape.train.checkpoint import BEST, CHECKPOINT, load_checkpoint, save_checkpoint
from mixtape.train.config import FrontendConfig, TrainConfig
from mixtape.train.data import ShardStream, StreamStats, StreamTracker, expand_urls, shard_slot, sibling_url
from mixtape.train.evaluate import evaluate_predictions, predict, score
from mixtape.train.models import ModelSpec, build_model, count_parameters, input_samples, preset_frontend
from mixtape.train.runs import RunError, dataset_shards
from mixtape.train.targets import LabelEncoder
from mixtape.train.tasks import TaskError, TaskSet


class TrainError(MixtapeError, RuntimeError):
    pass


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


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up to ``peak`` then cosine decay to 5% of it."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def resolve_dataset(cfg: TrainConfig) -> tuple[dict[str, Any], list[str], list[str]]:
    """The dataset card and the train / valid shard URLs. ``shards`` is shard URLs (brace-expanded) or a
    dataset folder / URL, whose card then lists the train shards. The card defaults to the one beside the
    shards; valid shards default to the card's valid split in the same place."""
    try:
        if cfg.card:
            card, train_urls = read_card(cfg.card), expand_urls(cfg.shards)
        else:
            card, train_urls = dataset_shards(cfg.shards, "train")
    except (OSError, ValueError, RunError) as e:
        raise TrainError(f"{e}; pass --card URL if the dataset card lives elsewhere") from e
    if cfg.valid_shards:
        valid_urls = expand_urls(cfg.valid_shards)
    else:
        valid = shard_names(card, "valid") if "valid" in card["splits"] else []
        valid_urls = [sibling_url(train_urls[0], name) for name in valid]
    return card, train_urls, valid_urls


def read_clip_list(path: str) -> frozenset[str]:
    """The clip ids a training keeps (one per line; blank lines and ``#`` comments ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise TrainError(f"--clips {path}: {e.strerror or e}") from None
    ids = frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    if not ids:
        raise TrainError(f"--clips {path} lists no clip ids")
    return ids


def check_same_dataset(resume: dict[str, Any], card: dict[str, Any], encoder: LabelEncoder, force: bool) -> None:
    """Resuming continues one run on one dataset: another spec hash or other vocabularies (the heads' sizes
    and meanings) would silently train something else. Refused unless forced."""
    was = resume.get("dataset") or {}
    vocab = resume.get("vocabularies") or {}
    problems = []
    if was.get("spec_hash") != card.get("spec_hash"):
        problems.append(f"the checkpoint's dataset has spec hash {str(was.get('spec_hash'))[:12]}, these shards' "
                        f"{str(card.get('spec_hash'))[:12]}")
    now = {"tags": encoder.tags, "classes": encoder.classes, "key": encoder.keys}
    for name in ("tags", "classes", "key"):
        if vocab.get(name) != now[name]:
            problems.append(f"the {name} vocabulary differs")
    if problems and not force:
        raise TrainError("cannot resume on another dataset: " + "; ".join(problems)
                         + " (pass --force to resume anyway, or train a new run)")


def samples_in(card: dict[str, Any], urls: list[str]) -> int | None:
    """Samples in these shards per the card; shards the card does not list count as its average shard
    (an estimate that only sizes the LR schedule). None when the card lists none of them."""
    counts = {s["name"]: int(s["samples"]) for split in card.get("splits", {}).values() for s in split["shards"]}
    known = [counts[n] for n in (u.rsplit("/", 1)[-1] for u in urls) if n in counts]
    if not known:
        return None
    return sum(known) + round((len(urls) - len(known)) * sum(known) / len(known))


class _Log:
    """metrics.jsonl (every event), TensorBoard when installed, and the human log; only rank 0 writes."""

    def __init__(self, out: Path, enabled: bool, log: Callable[[str], None]):
        self.enabled, self.human = enabled, log
        self.file = open(out / "metrics.jsonl", "a", encoding="utf-8") if enabled else None
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:  # TensorBoard is optional
                self.tb = None

    def event(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        assert self.file is not None
        self.file.write(json.dumps(row, sort_keys=True, default=float) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in _flat(row).items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.tb.add_scalar(f"{row.get('event', 'train')}/{k}", v, row.get("step", 0))

    def say(self, message: str) -> None:
        if self.enabled:
            self.human(message)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k in ("per_tag", "confusion", "labels", "errors"):
            continue
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def train(cfg: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    dd = D.init_distributed(cfg.device)
    try:
        return _train(cfg, dd, log)
    finally:
        D.shutdown(dd)


def _train(cfg: TrainConfig, dd: D.Dist, log: Callable[[str], None]) -> TrainResult:
    if cfg.steps is None and cfg.epochs is None:
        raise TrainError("give --steps or --epochs")
    if cfg.resampled and cfg.steps is None:
        raise TrainError("the resampled stream is endless: give --steps with --resampled")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    resume = load_checkpoint(cfg.resume) if cfg.resume else None
    if resume is not None:
        cfg = _resumed_config(cfg, resume)
    card, train_urls, valid_urls = resolve_dataset(cfg)
    encoder = LabelEncoder.from_card(card)
    if resume is not None:
        check_same_dataset(resume, card, encoder, cfg.force)
    try:
        tasks = TaskSet.from_names([t.strip() for t in cfg.tasks.split(",") if t.strip()], encoder)
    except TaskError as e:
        raise TrainError(str(e)) from e
    sr = int(card["audio"]["sample_rate"])
    spec = ModelSpec(cfg.model, tasks.size, sr, width=cfg.width, blocks=cfg.blocks, dropout=cfg.dropout,
                     frontend=preset_frontend(cfg.model, cfg.frontend))
    # identical initial weights on every rank (DDP also broadcasts them); per-rank dropout afterwards
    torch.manual_seed(int(rng_for(cfg.seed, "torch-init").integers(0, 2**31)))
    try:
        model = build_model(spec)
    except ValueError as e:
        raise TrainError(str(e)) from e
    torch.manual_seed(int(rng_for(cfg.seed, f"torch-rank/{dd.rank}").integers(0, 2**31)))
    model.to(dd.device)
    window = input_samples(spec, cfg.crop_seconds)
    n_params = count_parameters(model)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    logger = _Log(out, dd.is_main, log)
    shard_slots = dd.world_size * max(1, cfg.num_workers)
    logger.say(f"model {cfg.model} (width {spec.resolved_width}): {n_params:,} parameters; tasks "
               + ", ".join(f"{t.name} ({t.size})" for t in tasks.tasks)
               + f"; input {window} samples ({window / sr:.2f} s at {sr} Hz); {len(train_urls)} train shards, "
               f"{len(valid_urls)} valid shards; {dd.world_size} rank(s) x "
               + (f"{cfg.num_workers} loader worker process(es)" if cfg.num_workers else "in-process loading"))
    if not cfg.resampled and len(train_urls) < shard_slots:
        logger.say(f"warning: {len(train_urls)} shards for {shard_slots} reader slots: some readers stay idle; "
                   "build with a smaller shards.max_samples for more shards")
    per_epoch = [_steps_per_epoch(card, train_urls, cfg, dd.world_size, e) for e in range(cfg.epochs or 1)]
    planned = None if any(n is None for n in per_epoch) else sum(n for n in per_epoch if n is not None)
    total = cfg.steps if cfg.steps is not None else (planned or 0)
    if cfg.steps is None and not planned:
        raise TrainError("cannot size --epochs: the dataset card lists none of these shards; give --steps")
    if cfg.epochs is not None and planned is not None and cfg.steps is not None:
        total = min(cfg.steps, planned)
    if planned == 0:
        n = samples_in(card, train_urls) or 0
        raise TrainError(f"the train shards hold {n} samples, fewer than one batch of --batch-size "
                         f"{cfg.batch_size} per reader ({dd.world_size} rank(s) x {max(1, cfg.num_workers)} "
                         "loader slot(s)): lower --batch-size or --loader-workers, or build more samples")
    # `total` sizes the schedule; the run ends at --steps, or when --epochs are exhausted (an exact epoch's
    # step count can fall a little short of the estimate when a rank or worker ends early)
    step_limit = cfg.steps if cfg.steps is not None else math.inf

    ddp_model: torch.nn.Module = model
    if dd.enabled:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dd.local_rank] if dd.device.startswith("cuda") else None)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, total, cfg.warmup_steps, 1.0))
    use_amp = cfg.amp and dd.device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    card_url = cfg.card or sibling_url(train_urls[0], CARD_NAME)
    stream = ShardStream(train_urls, encoder, sr, crop_samples=window, batch_size=cfg.batch_size, crop="random",
                         crops=cfg.crops, shuffle_buffer=cfg.shuffle_buffer, seed=cfg.seed, rank=dd.rank,
                         world_size=dd.world_size, resampled=cfg.resampled, drop_last=True,
                         expected=shard_checks(card, train_urls, card_url), verify_remote=cfg.verify_remote,
                         clips=read_clip_list(cfg.clips) if cfg.clips else None)
    step = epoch = 0
    best: float | None = None
    bad_evals = 0
    stream_state: dict[str, Any] | None = None
    history: list[dict[str, Any]] = []
    samples_before = 0
    earlier_losses: list[float] = []  # losses of the run's earlier invocations (a resumed run)
    epoch_stats_before: dict[str, Any] = {}  # the interrupted epoch's stream counts so far
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        scaler.load_state_dict(resume.get("scaler", {}) or scaler.state_dict())
        step, best, bad_evals = int(resume["step"]), resume.get("best"), int(resume.get("bad_evals", 0))
        samples_before = int(resume.get("samples", 0))
        streams = resume["stream"]
        if len(streams) != dd.world_size:
            raise TrainError(f"the checkpoint was written by {len(streams)} rank(s); resume with the same number "
                             f"(now {dd.world_size})")
        stream_state = streams[dd.rank]
        epoch = int(stream_state["epoch"])
        if stream_state.get("positions") and int(stream_state.get("num_workers", 1)) != max(1, cfg.num_workers):
            raise TrainError(f"the checkpoint stopped mid-epoch with {stream_state['num_workers']} loader "
                             f"worker(s); resume with --loader-workers {stream_state['num_workers']}")
        rng = resume.get("rng", [])
        if dd.rank < len(rng):
            torch.set_rng_state(rng[dd.rank])
        history = list(resume.get("history", []))
        earlier_losses = [float(x) for x in resume.get("losses", [])]
        epoch_stats_before = dict(resume.get("epoch_stream") or {}) if stream_state.get("positions") else {}
        finished_epochs = cfg.epochs is not None and epoch >= cfg.epochs
        if step >= step_limit or finished_epochs:
            raise TrainError(f"{cfg.resume} is a finished run ({step} steps, {epoch} epoch(s)): nothing to "
                             f"resume; pass a larger --steps (or --epochs) than it ran to extend it")
        logger.say(f"resumed from {cfg.resume} at step {step}, epoch {epoch}")

    loss_parts: dict[str, list[float]] = {}
    losses: list[float] = list(earlier_losses)  # the whole run's, so summaries and windows ignore interruptions
    samples = 0
    stats_total = StreamStats()
    started = time.monotonic()
    bar = tqdm(total=total, initial=step, desc="train", unit="step", dynamic_ncols=True, mininterval=1.0,
               disable=not (dd.is_main and sys.stderr.isatty()))
    log_every = max(1, total // 10)
    steps_this_run = 0
    stopped_early = interrupted = False
    trace = open(out / (f"trace-rank{dd.rank}.jsonl" if dd.enabled else "trace.jsonl"), "a") if cfg.trace else None

    finished = False  # set once the run has reached its end: a resume then has nothing to do
    epoch_stream: dict[str, Any] = {}  # this epoch's stream counts at the last checkpoint

    def checkpoint(tracker_state: dict[str, Any], name: str = CHECKPOINT) -> str:
        states = D.gather(dd, tracker_state)
        rngs = D.gather(dd, torch.get_rng_state())
        total_samples = samples_before + D.sum_int(dd, samples)
        path = str(out / name)
        if dd.is_main:
            save_checkpoint(path, {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict(), "rng": rngs, "stream": states, "step": step, "samples": total_samples,
                "best": best, "bad_evals": bad_evals, "history": history, "config": _config_dict(cfg),
                "losses": losses, "finished": finished, "epoch_stream": epoch_stream,
                "model_spec": spec.as_dict(), "tasks": tasks.as_list(), "window": window,
                "vocabularies": {"tags": encoder.tags, "classes": encoder.classes, "key": encoder.keys},
                "dataset": {"name": card.get("name"), "version": card.get("version"),
                            "spec_hash": card.get("spec_hash")}})
        return path

    def run_eval() -> dict[str, Any]:
        nonlocal best, bad_evals
        report: dict[str, Any] = {}
        if dd.is_main:
            pred = predict(model, tasks, valid_urls, encoder, sr, window, batch_size=cfg.batch_size,
                           device=dd.device, expected=shard_checks(card, valid_urls, card_url)) if valid_urls else None
            report = evaluate_predictions(tasks, pred) if pred is not None else {"windows": 0}
            report["score"] = score(tasks, report) if pred is not None else None
        report = D.broadcast(dd, report)
        value = report.get("score")
        improved = value is not None and (best is None or value > best + 1e-6)
        if improved:
            best, bad_evals = value, 0
        elif value is not None:
            bad_evals += 1
        row = {"event": "eval", "step": step, "epoch": epoch, "score": value, "best": best, **_flat(report)}
        history.append({"step": step, "epoch": epoch, "score": value})
        logger.event(row)
        logger.say(f"eval step {step}: valid score {value if value is None else round(value, 4)} (best "
                   f"{best if best is None else round(best, 4)}, {bad_evals} without improvement)")
        report["improved"] = improved
        return report

    last_report: dict[str, Any] | None = None
    last_eval_step = -1
    final_state: dict[str, Any] = stream_state or {"epoch": epoch}
    done = step >= step_limit
    while not done:
        stream.set_epoch(epoch, stream_state)
        tracker = StreamTracker(max(1, cfg.num_workers), epoch, stream_state)
        if epoch_stats_before:  # the interrupted epoch's counts before the break belong to this epoch
            tracker.stats.add(epoch_stats_before)
            epoch_stats_before = {}
        stream_state = None
        # the loader gets its own generator: drawing worker seeds from the global RNG would shift the dropout
        # sequence of a resumed run (the stream itself is seeded by sample keys, not by torch)
        loader_rng = torch.Generator().manual_seed(int(rng_for(cfg.seed, f"loader/{epoch}").integers(0, 2**31)))
        loader = iter(DataLoader(stream, batch_size=None, num_workers=cfg.num_workers, generator=loader_rng))
        epoch_steps = 0
        exhausted = False
        while True:
            batch = _next_real(loader, tracker)
            if not D.all_have_batch(dd, batch is not None):
                exhausted = True
                break
            assert batch is not None
            wave = batch["audio"].to(dd.device, non_blocking=True)
            targets = {k: v.to(dd.device) for k, v in batch["targets"].items()}
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                logits = ddp_model(wave)
            loss, parts = tasks.loss(logits.float(), targets)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            tracker.consume(batch)
            if trace is not None:
                trace.write(json.dumps({"step": step, "keys": batch["keys"]}) + "\n")
            step += 1
            epoch_steps += 1
            steps_this_run += 1
            samples += wave.shape[0] * dd.world_size
            losses.append(float(loss.detach()))
            for k, v in parts.items():
                loss_parts.setdefault(k, []).append(v)
            rate = samples / max(1e-9, time.monotonic() - started)
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.4f}", sps=f"{rate:.0f}", epoch=epoch)
            bar.update(1)
            if step % log_every == 0 or step == total:
                logger.event({"event": "train", "step": step, "epoch": epoch, "loss": float(np.mean(losses[-10:])),
                              "lr": sched.get_last_lr()[0], "samples_per_second": rate,
                              **{f"loss_{k}": float(np.mean(v[-10:])) for k, v in loss_parts.items()}})
                if bar.disable:
                    logger.say(f"step {step}/{total} epoch {epoch} loss {np.mean(losses[-10:]):.4f} "
                               f"lr {sched.get_last_lr()[0]:.2e} {rate:.0f} samples/s")
            evaluated = False
            if cfg.eval_every and step % cfg.eval_every == 0 and step < total:
                last_report = run_eval()
                last_eval_step = step
                evaluated = True
                if last_report["improved"]:
                    checkpoint(tracker.state(), BEST)
                if cfg.patience and bad_evals >= cfg.patience:
                    stopped_early = True
            if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or evaluated:
                epoch_stream = tracker.stats.as_dict()
                checkpoint(tracker.state())
            if step >= step_limit or stopped_early:
                done = True
                break
            if cfg.stop_after is not None and steps_this_run >= cfg.stop_after:
                interrupted = done = True
                break
        stats_total.add(tracker.stats.as_dict())
        del loader  # stops this epoch's loader workers now
        if exhausted:
            if epoch_steps == 0:
                raise TrainError(f"no training batch could be read from {cfg.shards} (corrupt samples: "
                                 f"{tracker.stats.corrupt}; {tracker.stats.errors[:3]})")
            logger.event({"event": "epoch", "epoch": epoch, "step": step, "stream": tracker.stats.as_dict()})
            if tracker.stats.corrupt:
                logger.say(f"epoch {epoch}: skipped {tracker.stats.corrupt} corrupt sample(s)/shard(s): "
                           + "; ".join(tracker.stats.errors[:3]))

            epoch += 1
            if cfg.epochs is not None and epoch >= cfg.epochs:
                done = True
            if not cfg.eval_every and cfg.steps is None and not done:
                last_report = run_eval()
                last_eval_step = step
                if last_report["improved"]:
                    checkpoint({"epoch": epoch}, BEST)
                if cfg.patience and bad_evals >= cfg.patience:
                    stopped_early = done = True
            final_state = {"epoch": epoch}
        else:
            final_state = tracker.state()
    bar.close()
    if trace is not None:
        trace.close()
    elapsed = time.monotonic() - started
    if not interrupted and last_eval_step != step:  # an evaluation at this very step is not repeated
        last_report = run_eval()
        if last_report["improved"]:
            checkpoint(final_state, BEST)
    finished = not interrupted
    epoch_stream = tracker.stats.as_dict() if interrupted and final_state.get("positions") else {}
    ckpt = checkpoint(final_state)
    window_n = max(1, min(20, len(losses) // 4))
    result = TrainResult(
        steps=step, samples=samples_before + samples, epochs=epoch,
        first_loss=float(np.mean(losses[:window_n])) if losses else math.nan,
        final_loss=float(np.mean(losses[-window_n:])) if losses else math.nan,
        samples_per_second=samples / elapsed if elapsed > 0 else 0.0, valid=last_report or {},
        score=(last_report or {}).get("score"), parameters=n_params, checkpoint=ckpt, stopped_early=stopped_early,
        interrupted=interrupted, stream=stats_total.as_dict(), losses=losses)
    if dd.is_main:
        with open(out / "metrics.json", "w", encoding="utf-8") as f:
            json.dump({**{k: v for k, v in asdict(result).items() if k != "losses"}, "losses": losses,
                       "history": history, "config": _config_dict(cfg)}, f, indent=1, default=float)
        if stats_total.corrupt:
            logger.say(f"skipped {stats_total.corrupt} corrupt sample(s)/shard(s) in training")
        if stats_total.short:
            logger.say(f"warning: {stats_total.short} of {stats_total.samples} samples read were shorter than the "
                       f"{window / sr:.2f} s input and were padded with silence: lower --crop-seconds or build "
                       "longer snippets")
    logger.close()
    return result


def _next_real(loader: Any, tracker: StreamTracker) -> dict[str, Any] | None:
    """The next batch with samples; workers' final stats-only batches are folded into the tracker."""
    for batch in loader:
        if batch["end"]:
            tracker.consume(batch)
            continue
        return batch
    return None


def _steps_per_epoch(card: dict[str, Any], urls: list[str], cfg: TrainConfig, world: int, epoch: int = 0
                     ) -> int | None:
    """Optimiser steps of one epoch, exactly: each (rank, loader worker) slot reads its shards of the epoch's
    deal and drops its last partial batch, and ranks stop together when the first runs out. None when the
    card does not list every shard, or a clip list leaves samples out (then only the stream knows)."""
    counts = {s["name"]: int(s["samples"]) for split in card.get("splits", {}).values() for s in split["shards"]}
    if cfg.clips or cfg.resampled or any(u.rsplit("/", 1)[-1] not in counts for u in urls):
        n = samples_in(card, urls)
        return None if n is None else max(1, (n * max(1, cfg.crops)) // (world * cfg.batch_size))
    workers = max(1, cfg.num_workers)
    per_rank = []
    for rank in range(world):
        steps = 0
        for w in range(workers):
            n = sum(counts[u.rsplit("/", 1)[-1]] for u in shard_slot(urls, epoch, cfg.seed, rank, world, w, workers))
            steps += (n * max(1, cfg.crops)) // cfg.batch_size
        per_rank.append(steps)
    return min(per_rank)


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["frontend"] = cfg.frontend.as_dict()
    return d


def _resumed_config(cfg: TrainConfig, ckpt: dict[str, Any]) -> TrainConfig:
    """The checkpoint's settings for everything that shapes the model and the data order; the run's own
    length (steps / epochs), interruption, output and worker settings come from the command line."""
    saved = dict(ckpt["config"])
    saved["frontend"] = FrontendConfig(**saved["frontend"])
    keep = {"steps", "epochs", "out", "stop_after", "resume", "trace", "threads", "device", "patience",
            "eval_every", "checkpoint_every", "num_workers", "shards", "valid_shards", "card", "force",
            "verify_remote"}
    known = {k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__}
    return TrainConfig(**{**known, **{k: getattr(cfg, k) for k in keep}})
