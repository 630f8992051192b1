"""Evaluation during training: the clip-level validation score, the best one so far and the count of
evaluations without improvement that ``--patience`` stops on."""

from __future__ import annotations

from typing import Any

from mixtape.train import distributed as D
from mixtape.train.evaluate import evaluate_predictions, predict, score
from mixtape.train.resume import RunState
from mixtape.train.runlog import flat
from mixtape.train.setup import Run

# a score must beat the best by more than this to count as an improvement (float noise is not progress)
_MIN_GAIN = 1e-6


def evaluate_now(run: Run, state: RunState) -> dict[str, Any]:
    """Score the valid split on rank 0, share the report with every rank, and update the best score and the
    patience count; the report's ``improved`` says whether this evaluation set a new best."""
    report: dict[str, Any] = {}
    if run.dd.is_main:
        pred = predict(run.model, run.tasks, run.valid_urls, run.encoder, run.sr, run.window,
                       batch_size=run.cfg.batch_size, device=run.dd.device,
                       expected=run.expected(run.valid_urls)) if run.valid_urls else None
        report = evaluate_predictions(run.tasks, pred) if pred is not None else {"windows": 0}
        report["score"] = score(run.tasks, report) if pred is not None else None
    report = D.broadcast(run.dd, report)
    value = report.get("score")
    improved = value is not None and (state.best is None or value > state.best + _MIN_GAIN)
    if improved:
        state.best, state.bad_evals = value, 0
    elif value is not None:
        state.bad_evals += 1
    best = state.best
    run.log.event({"event": "eval", "step": state.step, "epoch": state.epoch, "score": value, "best": best,
                   **flat(report)})
    state.history.append({"step": state.step, "epoch": state.epoch, "score": value})
    run.log.say(f"eval step {state.step}: valid score {value if value is None else round(value, 4)} (best "
                f"{best if best is None else round(best, 4)}, {state.bad_evals} without improvement)")
    report["improved"] = improved
    return report
