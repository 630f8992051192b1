"""One optimiser step: forward (mixed precision on GPU), the tasks' joint loss, backward with gradient
clipping, AdamW and the schedule."""

from __future__ import annotations

from typing import Any

import torch

from mixtape.train.setup import Run


def optimiser_step(run: Run, batch: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """Train on one batch; the batch's loss and each task's part of it."""
    wave = batch["audio"].to(run.dd.device, non_blocking=True)
    targets = {k: v.to(run.dd.device) for k, v in batch["targets"].items()}
    with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=run.use_amp):
        logits = run.ddp_model(wave)
    loss, parts = run.tasks.loss(logits.float(), targets)
    run.opt.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.unscale_(run.opt)
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.grad_clip)
    run.scaler.step(run.opt)
    run.scaler.update()
    run.sched.step()
    return float(loss.detach()), parts
