"""Everything a training run holds before its first step: the dataset and its shards, the tasks, the model
on its device, the optimiser and schedule sized to the run, and the train stream.

A run is checked here, before any work: an unsized run, a train split smaller than one batch per reader or
a model the tasks cannot use is an error naming the option to change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mixtape.dataset.card import read_card, shard_checks, shard_names
from mixtape.dataset.names import CARD_NAME
from mixtape.errors import MixtapeError
from mixtape.hashing import rng_for
from mixtape.train import distributed as D
from mixtape.train.config import TrainConfig
from mixtape.train.data import ShardStream, expand_urls, shard_slot, sibling_url
from mixtape.train.models import ModelSpec, MusicModel, build_model, count_parameters, input_samples, preset_frontend
from mixtape.train.runlog import RunLog
from mixtape.train.runs import RunError, dataset_shards
from mixtape.train.targets import LabelEncoder
from mixtape.train.tasks import TaskError, TaskSet


class TrainError(MixtapeError, RuntimeError):
    pass


@dataclass
class Run:
    """The fixed parts of one invocation of a run (what changes step by step is :class:`RunState`)."""

    cfg: TrainConfig
    dd: D.Dist
    card: dict[str, Any]
    card_url: str
    train_urls: list[str]
    valid_urls: list[str]
    encoder: LabelEncoder
    tasks: TaskSet
    spec: ModelSpec
    model: MusicModel
    ddp_model: torch.nn.Module
    window: int
    sr: int
    parameters: int
    out: Path
    log: RunLog
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    use_amp: bool
    stream: ShardStream
    total: int  # the steps the LR schedule is sized for
    step_limit: float  # --steps, or infinite when --epochs ends the run

    def expected(self, urls: list[str]) -> dict[str, Any]:
        """The card's size and sha256 of these shards, for the reader to check."""
        return shard_checks(self.card, urls, self.card_url)


def check_config(cfg: TrainConfig) -> None:
    if cfg.steps is None and cfg.epochs is None:
        raise TrainError("give --steps or --epochs")
    if cfg.resampled and cfg.steps is None:
        raise TrainError("the resampled stream is endless: give --steps with --resampled")


def prepare(cfg: TrainConfig, dd: D.Dist, log: Callable[[str], None], resume: dict[str, Any] | None = None
            ) -> Run:
    """The run's parts, in the order that keeps every rank's torch RNG where a resumed run expects it.
    ``resume`` is the checkpoint a resumed run continues, checked against these shards' dataset."""
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
    model = _seeded_model(cfg, dd, spec)
    window = input_samples(spec, cfg.crop_seconds)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    runlog = RunLog(out, dd.is_main, log)
    parameters = count_parameters(model)
    _banner(runlog, cfg, dd, spec, tasks, parameters, window, sr, len(train_urls), len(valid_urls))
    total, step_limit = _length(cfg, card, train_urls, dd.world_size)

    ddp_model: torch.nn.Module = model
    if dd.enabled:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dd.local_rank] if dd.device.startswith("cuda") else None)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, total, cfg.warmup_steps, 1.0))
    use_amp = cfg.amp and dd.device.startswith("cuda")
    card_url = cfg.card or sibling_url(train_urls[0], CARD_NAME)
    stream = ShardStream(train_urls, encoder, sr, crop_samples=window, batch_size=cfg.batch_size, crop="random",
                         crops=cfg.crops, shuffle_buffer=cfg.shuffle_buffer, seed=cfg.seed, rank=dd.rank,
                         world_size=dd.world_size, resampled=cfg.resampled, drop_last=True,
                         expected=shard_checks(card, train_urls, card_url), verify_remote=cfg.verify_remote,
                         clips=read_clip_list(cfg.clips) if cfg.clips else None)
    return Run(cfg=cfg, dd=dd, card=card, card_url=card_url, train_urls=train_urls, valid_urls=valid_urls,
               encoder=encoder, tasks=tasks, spec=spec, model=model, ddp_model=ddp_model, window=window, sr=sr,
               parameters=parameters, out=out, log=runlog, opt=opt, sched=sched,
               scaler=torch.amp.GradScaler("cuda", enabled=use_amp), use_amp=use_amp, stream=stream, total=total,
               step_limit=step_limit)


def _seeded_model(cfg: TrainConfig, dd: D.Dist, spec: ModelSpec) -> MusicModel:
    """Identical initial weights on every rank (DDP also broadcasts them); per-rank dropout afterwards."""
    torch.manual_seed(int(rng_for(cfg.seed, "torch-init").integers(0, 2**31)))
    try:
        model = build_model(spec)
    except ValueError as e:
        raise TrainError(str(e)) from e
    torch.manual_seed(int(rng_for(cfg.seed, f"torch-rank/{dd.rank}").integers(0, 2**31)))
    model.to(dd.device)  # in place, for a module
    return model


def _banner(runlog: RunLog, cfg: TrainConfig, dd: D.Dist, spec: ModelSpec, tasks: TaskSet, parameters: int,
            window: int, sr: int, n_train: int, n_valid: int) -> None:
    runlog.say(f"model {cfg.model} (width {spec.resolved_width}): {parameters:,} parameters; tasks "
               + ", ".join(f"{t.name} ({t.size})" for t in tasks.tasks)
               + f"; input {window} samples ({window / sr:.2f} s at {sr} Hz); {n_train} train shards, "
               f"{n_valid} valid shards; {dd.world_size} rank(s) x "
               + (f"{cfg.num_workers} loader worker process(es)" if cfg.num_workers else "in-process loading"))
    shard_slots = dd.world_size * max(1, cfg.num_workers)
    if not cfg.resampled and n_train < shard_slots:
        runlog.say(f"warning: {n_train} shards for {shard_slots} reader slots: some readers stay idle; "
                   "build with a smaller shards.max_samples for more shards")


def _length(cfg: TrainConfig, card: dict[str, Any], urls: list[str], world: int) -> tuple[int, float]:
    """The steps the schedule is sized for, and the step that ends the run (infinite when --epochs ends it:
    an exact epoch's step count can fall a little short of the estimate when a rank or worker ends early)."""
    per_epoch = [steps_per_epoch(card, urls, cfg, world, e) for e in range(cfg.epochs or 1)]
    planned = None if any(n is None for n in per_epoch) else sum(n for n in per_epoch if n is not None)
    total = cfg.steps if cfg.steps is not None else (planned or 0)
    if cfg.steps is None and not planned:
        raise TrainError("cannot size --epochs: the dataset card lists none of these shards; give --steps")
    if cfg.epochs is not None and planned is not None and cfg.steps is not None:
        total = min(cfg.steps, planned)
    if planned == 0:
        n = samples_in(card, urls) or 0
        raise TrainError(f"the train shards hold {n} samples, fewer than one batch of --batch-size "
                         f"{cfg.batch_size} per reader ({world} rank(s) x {max(1, cfg.num_workers)} "
                         "loader slot(s)): lower --batch-size or --loader-workers, or build more samples")
    return total, (cfg.steps if cfg.steps is not None else math.inf)


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


def check_same_dataset(resume: dict[str, Any], card: dict[str, Any], encoder: LabelEncoder, force: bool) -> None:
    """Resuming continues one run on one dataset: another spec hash or other vocabularies (the heads' sizes
    and meanings) would silently train something else. Refused unless forced."""
    was = resume.get("dataset") or {}
    vocab = resume.get("vocabularies") or {}
    problems = []
    if was.get("spec_hash") != card.get("spec_hash"):
        problems.append(f"the checkpoint's dataset has spec hash {str(was.get('spec_hash'))[:12]}, these shards' "
                        f"{str(card.get('spec_hash'))[:12]}")
    now = encoder.vocabularies()
    for name in ("tags", "classes", "key"):
        if vocab.get(name) != now[name]:
            problems.append(f"the {name} vocabulary differs")
    if problems and not force:
        raise TrainError("cannot resume on another dataset: " + "; ".join(problems)
                         + " (pass --force to resume anyway, or train a new run)")


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


def samples_in(card: dict[str, Any], urls: list[str]) -> int | None:
    """Samples in these shards per the card; shards the card does not list count as its average shard
    (an estimate that only sizes the LR schedule). None when the card lists none of them."""
    counts = {s["name"]: int(s["samples"]) for split in card.get("splits", {}).values() for s in split["shards"]}
    known = [counts[n] for n in (u.rsplit("/", 1)[-1] for u in urls) if n in counts]
    if not known:
        return None
    return sum(known) + round((len(urls) - len(known)) * sum(known) / len(known))


def steps_per_epoch(card: dict[str, Any], urls: list[str], cfg: TrainConfig, world: int, epoch: int = 0
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
