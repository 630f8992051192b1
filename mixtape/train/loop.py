"""``mixtape train``: AdamW with warm-up and cosine decay over a shard stream, evaluated by ROC-AUC."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from mixtape.hashing import rng_for
from mixtape.train.data import LabelEncoder, ShardStream, expand_urls, read_json_url, sibling_url
from mixtape.train.metrics import clip_level, roc_auc_macro
from mixtape.train.models import MODELS, count_parameters


class TrainError(RuntimeError):
    pass


@dataclass
class TrainConfig:
    shards: str
    out: str
    valid_shards: str | None = None
    card: str | None = None
    model: str = "shortchunk"
    width: int = 16
    steps: int = 200
    batch_size: int = 16
    crop_seconds: float = 2.0
    lr: float = 3e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 20
    grad_clip: float = 1.0
    shuffle_buffer: int = 256
    eval_every: int = 0
    num_workers: int = 0
    seed: int = 0
    threads: int = 0


@dataclass
class TrainResult:
    steps: int
    samples: int
    first_loss: float
    final_loss: float
    samples_per_second: float
    valid: dict[str, Any]
    parameters: int
    checkpoint: str
    losses: list[float] = field(repr=False, default_factory=list)


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up to ``peak`` then cosine decay to 5% of it."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _collate(batch):
    waves, targets, keys, clips = zip(*batch, strict=True)
    return torch.stack(waves), torch.stack(targets), list(keys), list(clips)


def resolve_dataset(cfg: TrainConfig) -> tuple[dict[str, Any], list[str], list[str]]:
    """The dataset card and the train / valid shard URLs. ``shards`` is shard URLs (brace-expanded) or a
    dataset folder / URL, whose card then lists the train shards. The card defaults to the one beside the
    shards; valid shards default to the card's valid split in the same place."""
    spec = cfg.shards.strip()
    if not spec.endswith(".tar") and "{" not in spec and " " not in spec:
        base = spec[: -len("/dataset.json")] if spec.endswith("/dataset.json") else spec.rstrip("/")
        try:
            card = read_json_url(f"{base}/dataset.json")
        except (OSError, ValueError) as e:
            raise TrainError(f"{spec} is neither shard URLs nor a dataset folder with a dataset.json ({e})") from e
        cfg = replace(cfg, shards=" ".join(f"{base}/{s['name']}" for s in card["splits"]["train"]["shards"]),
                      card=cfg.card or f"{base}/dataset.json")
    train_urls = expand_urls(cfg.shards)
    card_url = cfg.card or sibling_url(train_urls[0], "dataset.json")
    try:
        card = read_json_url(card_url)
    except (OSError, ValueError) as e:
        raise TrainError(f"cannot read the dataset card at {card_url} ({e}); pass --card URL") from e
    if cfg.valid_shards:
        valid_urls = expand_urls(cfg.valid_shards)
    else:
        valid = card.get("splits", {}).get("valid", {}).get("shards", [])
        valid_urls = [sibling_url(train_urls[0], s["name"]) for s in valid]
    return card, train_urls, valid_urls


def evaluate(model: torch.nn.Module, urls: list[str], encoder: LabelEncoder, sample_rate: int,
             batch_size: int) -> dict[str, Any]:
    """Snippet- and clip-level macro ROC-AUC (clip scores are the mean of their snippets' scores)."""
    if not urls:
        return {"snippets": 0}
    stream = ShardStream(urls, encoder, sample_rate, crop_samples=None)
    scores, targets, clip_ids = [], [], []
    model.eval()
    with torch.no_grad():
        for waves, ys, _, clips in DataLoader(stream, batch_size=batch_size, collate_fn=_collate):
            scores.append(torch.sigmoid(model(waves)).numpy())
            targets.append(ys.numpy())
            clip_ids.extend(clips)
    model.train()
    if not scores:
        return {"snippets": 0, "corrupt": stream.stats.corrupt}
    s, t = np.concatenate(scores), np.concatenate(targets)
    cs, ct = clip_level(s, t, clip_ids)
    return {"snippets": len(s), "clips": len(cs), "roc_auc": roc_auc_macro(s, t),
            "clip_roc_auc": roc_auc_macro(cs, ct), "corrupt": stream.stats.corrupt}


def train(cfg: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    if cfg.model not in MODELS:
        raise TrainError(f"unknown model {cfg.model!r}; choose one of {', '.join(MODELS)}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(int(rng_for(cfg.seed, "torch-init").integers(0, 2**31)))
    card, train_urls, valid_urls = resolve_dataset(cfg)
    tags = card["vocabularies"]["tags"]
    if not tags:
        raise TrainError("the dataset's tag vocabulary is empty: nothing to train on")
    sr = int(card["audio"]["sample_rate"])
    encoder = LabelEncoder(tags)
    model = MODELS[cfg.model](len(tags), sr, width=cfg.width)
    n_params = count_parameters(model)
    log(f"model {cfg.model} (width {cfg.width}): {n_params:,} parameters, {len(tags)} tags, "
        f"{len(train_urls)} train shards, {len(valid_urls)} valid shards")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    stream = ShardStream(train_urls, encoder, sr, crop_samples=int(cfg.crop_seconds * sr),
                         shuffle_buffer=cfg.shuffle_buffer, seed=cfg.seed)
    os.makedirs(cfg.out, exist_ok=True)
    losses: list[float] = []
    history: list[dict[str, Any]] = []
    step = samples = epoch = 0
    started = time.monotonic()
    # A live bar on a terminal; plain log lines (every ~10% of the run) in logs and CI.
    bar = tqdm(total=cfg.steps, desc="train", unit="step", dynamic_ncols=True, mininterval=1.0,
               disable=not sys.stderr.isatty())
    log_every = max(1, cfg.steps // 10)
    while step < cfg.steps:
        stream.set_epoch(epoch)
        got_any = False
        for waves, ys, _, _ in DataLoader(stream, batch_size=cfg.batch_size, collate_fn=_collate,
                                          num_workers=cfg.num_workers, drop_last=True):
            got_any = True
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg.steps, cfg.warmup_steps, cfg.lr)
            loss = loss_fn(model(waves), ys)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            losses.append(loss.item())
            step += 1
            samples += waves.shape[0]
            rate = samples / max(1e-9, time.monotonic() - started)
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.4f}", sps=f"{rate:.0f}", epoch=epoch)
            bar.update(1)
            if bar.disable and (step % log_every == 0 or step == cfg.steps):
                log(f"step {step}/{cfg.steps} epoch {epoch} loss {np.mean(losses[-10:]):.4f} "
                    f"{rate:.0f} samples/s")
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                history.append({"step": step, **evaluate(model, valid_urls, encoder, sr, cfg.batch_size)})
            if step >= cfg.steps:
                break
        if not got_any:
            raise TrainError(f"no training batch could be read from {cfg.shards} "
                             f"(corrupt samples: {stream.stats.corrupt}; {stream.stats.errors[:3]})")
        epoch += 1
    bar.close()
    elapsed = time.monotonic() - started
    valid = evaluate(model, valid_urls, encoder, sr, cfg.batch_size)
    history.append({"step": step, **valid})
    ckpt = os.path.join(cfg.out, "checkpoint.pt")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "epoch": epoch,
                "config": asdict(cfg), "tags": tags, "sample_rate": sr}, ckpt)
    window = max(1, min(20, len(losses) // 4))
    result = TrainResult(steps=step, samples=samples, first_loss=float(np.mean(losses[:window])),
                         final_loss=float(np.mean(losses[-window:])), samples_per_second=samples / elapsed,
                         valid=valid, parameters=n_params, checkpoint=ckpt, losses=losses)
    with open(os.path.join(cfg.out, "metrics.json"), "w") as f:
        json.dump({**{k: v for k, v in asdict(result).items() if k != "losses"}, "losses": losses,
                   "history": history, "epochs": epoch, "train_corrupt": stream.stats.corrupt}, f, indent=1)
    return result
