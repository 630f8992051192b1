"""What augmentation buys when labels are scarce: build once per condition, train on nested subsets, test.

    .venv/bin/python bench/scarcity.py [--spec SPEC.yaml] [--out DIR] [--quick]
        [--conditions none,label-aware,labels-not-transformed,audio-only,re-orchestrated]
        [--fractions 0.1,0.25,1.0] [--seeds 0,1,2] [--tasks key,tags,genre,tempo] [--steps 200]

Conditions (every dataset comes from the same spec and seed, so the clean originals, their splits and
windows are the same in all of them; a condition's dataset holds only its train variants):
  none                     the clean originals only
  label-aware              + variants from mixtape's chain (pitch shift with key / chord / note
                           transposition, time stretch with tempo and time scaling, mixing in the split)
  labels-not-transformed   the same variant audio, the clean window's labels kept (McFee et al.'s point)
  audio-only               + variants from label-free effects (noise, filter, gain, reverb)
  re-orchestrated          + other renders of the same scores (score sources only)
Each trains on nested, group-wise subsets of the train split (``--fractions``; a seed draws its own
subsets), with the same budget (``--steps``) and early stopping on the valid split, and is scored per clip on
the one test split: key with the keycnn preset (log-frequency), the other tasks with shortchunk-small
(log-mel). Error is 1 - score (MIREX for key, ROC-AUC for tags, accuracy for classes, Acc1 for tempo).
Also: the non-learned baseline (chroma + key profiles, onset autocorrelation) and logistic-regression / kNN
probes on embeddings of the largest fraction's models. Writes ``scarcity.json`` (every run, the summary,
spec hash and versions; rewritten after every run) and ``scarcity.png``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

from mixtape.pipelines.build import RunnerConfig, build
from mixtape.records import Clip
from mixtape.sources.registry import list_source
from mixtape.spec import parse_spec

CONDITIONS = ("none", "label-aware", "labels-not-transformed", "audio-only", "re-orchestrated")
LABEL_AWARE = [
    {"op": "pitch_shift", "p": 0.9, "semitones": [-5, 6]},
    {"op": "time_stretch", "p": 0.6, "rate": [0.85, 1.18]},
    {"op": "mix", "p": 0.25, "snr_db": [6, 15], "labels": "union"},
]
AUDIO_ONLY = [
    {"op": "add_noise", "p": 0.5, "snr_db": [15, 35], "colour": ["white", "pink"]},
    {"op": "filter", "p": 0.5, "type": ["lowpass", "highpass", "peaking"], "freq_hz": [300, 4000]},
    {"op": "reverb", "p": 0.4, "wet": [0.1, 0.4], "rt60": [0.3, 1.2]},
    {"op": "gain", "p": 0.7, "db": [-9, 3]},
]
#: what a model is trained for: key alone with keycnn; the rest together with shortchunk-small
MODELS = {"key": ("keycnn", 2.9), "rest": ("shortchunk-small", 2.0)}
DEFAULT_PIECES = 420
FULL = {"conditions": ",".join(CONDITIONS), "fractions": "0.25,1.0,0.1", "seeds": "0,1,2", "steps": 200,
        "pieces": DEFAULT_PIECES}
QUICK = {"conditions": "none,label-aware", "fractions": "0.25,1.0", "seeds": "0", "steps": 60, "pieces": 120}


def condition_spec(raw: dict[str, Any], condition: str, variants: int) -> dict[str, Any] | None:
    """The spec of a condition's dataset (None when the condition does not apply to the spec)."""
    d = copy.deepcopy(raw)
    d["augment"] = {"variants": 0}
    if condition == "none":
        return d
    if condition == "re-orchestrated":
        scores = [s for s in d["sources"] if s.get("kind") == "score"]
        if not scores:
            return None
        for s in scores:
            s["renders"] = variants + 1
        return d
    chain = AUDIO_ONLY if condition == "audio-only" else LABEL_AWARE
    d["augment"] = {"variants": variants, "keep_original": False, "splits": ["train"], "chain": chain,
                    **({"labels": "keep"} if condition == "labels-not-transformed" else {})}
    return d


def subsets(groups: dict[str, str], fractions: list[float], seed: int) -> dict[float, list[str]]:
    """Nested subsets of the train clips, whole groups at a time, in an order the seed draws."""
    by_group: dict[str, list[str]] = {}
    for clip, group in sorted(groups.items()):
        by_group.setdefault(group, []).append(clip)
    order = sorted(by_group, key=lambda g: hashlib.sha256(f"{seed}/{g}".encode()).hexdigest())
    out, taken = {}, []
    total = len(groups)
    it = iter(order)
    for f in sorted(fractions):
        while len(taken) < max(1, round(f * total)):
            taken += by_group[next(it)]
        out[f] = sorted(taken)
    return out


def train_groups(spec: Any, train: Counter[str]) -> dict[str, str]:
    """clip id -> its split group, for the train clips (``train``: their sample counts)."""
    out = {}
    for source in spec.sources:
        for c in list_source(source):
            if isinstance(c, Clip) and c.clip_id in train:
                out[c.clip_id] = c.group(spec.splits.group_by)
    return out


def _build(raw: dict[str, Any], base_dir: Path, out: Path, log) -> tuple[Any, dict[str, Any]]:
    spec = parse_spec(raw, base_dir)
    card_path = out / "dataset.json"
    if card_path.exists() and json.loads(card_path.read_text()).get("spec_hash") == spec.spec_hash:
        return spec, json.loads(card_path.read_text())  # built by an earlier run of this benchmark
    t = time.monotonic()
    card = build(spec, str(out), RunnerConfig(workers=2), overwrite=True)
    log(f"  built {out.name}: {sum(s['samples'] for s in card['splits'].values())} samples in "
        f"{time.monotonic() - t:.0f} s")
    return spec, card


def train_samples(dataset: Path) -> Counter[str]:
    """Train samples per clip id of a built dataset (read once per dataset, not once per run)."""
    rows = pq.read_table(dataset / "index.parquet", columns=["clip_id", "split"]).to_pylist()
    return Counter(r["clip_id"] for r in rows if r["split"] == "train")


def _train_one(base: Path, extra: Path | None, clips: list[str], model: str, crop: float, tasks: str, seed: int,
               steps: int, out: Path, counts: dict[Path, Counter[str]]) -> dict[str, Any]:
    from mixtape.train.loop import TrainConfig, train
    from mixtape.train.runs import evaluate_run

    shards = [str(p) for p in sorted(base.glob("train-*.tar"))]
    if extra is not None:
        shards += [str(p) for p in sorted(extra.glob("train-*.tar"))]
    (out / "clips.txt").parent.mkdir(parents=True, exist_ok=True)
    (out / "clips.txt").write_text("\n".join(clips) + "\n")
    valid = " ".join(str(p) for p in sorted(base.glob("valid-*.tar")))
    available = sum(counts[d][c] for d in ([base] + ([extra] if extra else [])) for c in set(clips))
    cfg = TrainConfig(shards=" ".join(shards), valid_shards=valid, card=str(base / "dataset.json"), out=str(out),
                      model=model, tasks=tasks, steps=steps, crop_seconds=crop, seed=seed,
                      batch_size=max(2, min(16, available // 2)),  # a tiny subset still makes batches
                      eval_every=max(1, steps // 2), patience=2, clips=str(out / "clips.txt"), warmup_steps=10,
                      shuffle_buffer=512)
    t = time.monotonic()
    result = train(cfg, log=lambda _m: None)
    loaded, report = evaluate_run(str(out), str(base), "test")
    return {"report": report, "tasks": loaded.tasks, "seconds": time.monotonic() - t, "steps": result.steps,
            "samples": result.samples}


def _scores(tasks: Any, report: dict[str, Any]) -> dict[str, tuple[str, float | None]]:
    from mixtape.train.tasks import headline

    return {t.name: headline(t, report.get("clip", {}).get(t.name, {})) for t in tasks.tasks}


def summarise(runs: list[dict[str, Any]], conditions: list[str], fractions: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for task in sorted({r["task"] for r in runs}):
        out[task] = {}
        for c in conditions:
            out[task][c] = {}
            for f in fractions:
                errs = [r["error"] for r in runs if r["task"] == task and r["condition"] == c
                        and r["fraction"] == f and r["error"] is not None]
                if errs:
                    out[task][c][str(f)] = {"mean": float(np.mean(errs)), "std": float(np.std(errs)), "n": len(errs)}
        for c in conditions:
            for f, cell in out[task][c].items():
                ref = out[task].get("none", {}).get(f)
                cell["relative_error_reduction"] = (None if not ref or ref["mean"] == 0 else
                                                    1.0 - cell["mean"] / ref["mean"])
    return out


def table(summary: dict[str, Any], fractions: list[float]) -> list[str]:
    lines = [f"{'task':<8}{'condition':<25}" + "".join(f"{f'{f:.0%} error':>18}" for f in fractions)
             + f"{'RER vs none':>22}"]
    for task, by_cond in summary.items():
        for c, cells in by_cond.items():
            row = "".join(f"{cells[str(f)]['mean']:>10.3f} ± {cells[str(f)]['std']:.3f}" if str(f) in cells
                          else f"{'-':>18}" for f in fractions)
            rer = " ".join(f"{cells[str(f)]['relative_error_reduction']:+.0%}"
                           if str(f) in cells and cells[str(f)]["relative_error_reduction"] is not None else "-"
                           for f in fractions)
            lines.append(f"{task:<8}{c:<25}{row}   {rer:>18}")
    return lines


def plot(summary: dict[str, Any], fractions: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(summary)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for c, cells in summary[task].items():
            xs = [f for f in fractions if str(f) in cells]
            if not xs:
                continue
            ys = np.array([cells[str(f)]["mean"] for f in xs])
            sd = np.array([cells[str(f)]["std"] for f in xs])
            ax.errorbar(xs, ys, yerr=sd, marker="o", capsize=3, label=c)
        ax.set_xscale("log")
        ax.set_xticks(fractions, [f"{f:.0%}" for f in fractions])
        ax.set_title(task)
        ax.set_xlabel("share of train clips")
        ax.set_ylabel("clip-level error (1 - score)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def default_spec(out: Path, pieces: int) -> Path:
    """The real-music demo collection at a larger size, written under ``out``."""
    from mixtape.demo.scores import allocation, demo_spec, write_dump

    work = out / "collection-work"
    spec_path = work / "spec.yaml"
    if not spec_path.exists():
        work.mkdir(parents=True, exist_ok=True)
        write_dump(work / "collection", allocation(pieces)["folk"])
        spec_path.write_text(demo_spec(pieces))
    return spec_path


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", help="a dataset spec (default: the real-music demo collection, larger)")
    ap.add_argument("--out", default="scarcity-output")
    ap.add_argument("--conditions", help=f"comma-separated (default: all of {', '.join(CONDITIONS)})")
    ap.add_argument("--fractions", help="shares of the train clips, in the order they run (default 0.25,1.0,0.1)")
    ap.add_argument("--seeds", help="default 0,1,2")
    ap.add_argument("--tasks", default="key,tags,genre,tempo", help="key, tags, tempo and class fields")
    ap.add_argument("--steps", type=int, help="training steps per run, the same for every run (default 200)")
    ap.add_argument("--variants", type=int, default=2, help="augmented variants (or extra renders) per window")
    ap.add_argument("--pieces", type=int, help=f"size of the default collection (default {DEFAULT_PIECES})")
    ap.add_argument("--quick", action="store_true",
                    help="a small grid unless the options say otherwise: none and label-aware, 25%% and 100%%, "
                         "one seed, 60 steps, 120 pieces")
    args = ap.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    unknown = sorted({c for c in args.conditions.split(",") if c} - set(CONDITIONS))
    if unknown:
        ap.error(f"unknown conditions {unknown}; choose from {', '.join(CONDITIONS)}")
    return args


def log(message: str) -> None:
    print(message, flush=True)


class _Grid:
    """The datasets of every condition, the train clips they share, and which models learn which tasks."""

    def __init__(self, args: argparse.Namespace, out: Path):
        self.spec_path = Path(args.spec) if args.spec else default_spec(out, args.pieces)
        raw = yaml.safe_load(self.spec_path.read_text())
        log(f"building {len(args.conditions.split(','))} condition datasets from {self.spec_path} ...")
        self.datasets: dict[str, Path] = {}
        self.cards: dict[str, dict[str, Any]] = {}
        specs: dict[str, Any] = {}
        for c in [c for c in args.conditions.split(",") if c]:
            d = condition_spec(raw, c, args.variants)
            if d is None:
                log(f"  {c}: skipped (the spec has no score source to re-render)")
                continue
            specs[c], self.cards[c] = _build(d, self.spec_path.parent, out / "data" / c, log)
            self.datasets[c] = out / "data" / c
        self.conditions = list(self.datasets)
        vocab = self.cards["none"]["vocabularies"]
        present = {"key": True, "tags": bool(vocab["tags"]), "tempo": True, **{n: True for n in vocab["classes"]}}
        self.tasks = [t for t in args.tasks.split(",") if t and present.get(t)]
        self.groups: dict[str, list[str]] = {"key": ["key"] if "key" in self.tasks else [],
                                             "rest": [t for t in self.tasks if t != "key"]}
        self.counts = {d: train_samples(d) for d in self.datasets.values()}
        self.train_clips = train_groups(specs["none"], self.counts[self.datasets["none"]])
        #: a piece's extra renders (``<clip>~2``, ...), which re-orchestrated runs train on beside it
        self.reorch_extra: dict[str, list[str]] = {}
        for cid in sorted(self.counts.get(self.datasets.get("re-orchestrated", Path()), {})):
            stem, _, k = cid.rpartition("~")
            if stem and k.isdigit() and int(k) > 1:
                self.reorch_extra.setdefault(stem, []).append(cid)
        log(f"{len(self.train_clips)} train clips in {len(set(self.train_clips.values()))} groups; "
            f"tasks {', '.join(self.tasks)}")

    def clips(self, condition: str, picked: list[str]) -> list[str]:
        extra = [x for cid in picked for x in self.reorch_extra.get(cid, [])] if condition == "re-orchestrated" else []
        return list(picked) + extra


def _run(grid: _Grid, condition: str, fraction: float, seed: int, picked: list[str], steps: int, out: Path
         ) -> list[dict[str, Any]]:
    """Train every model of one grid cell; one result row per task it scored."""
    rows = []
    extra = None if condition == "none" else grid.datasets[condition]
    for name, task_list in grid.groups.items():
        if not task_list:
            continue
        model, crop = MODELS[name]
        r = _train_one(grid.datasets["none"], extra, grid.clips(condition, picked), model, crop, ",".join(task_list),
                       seed, steps, out / "runs" / f"{condition}-{fraction}-{seed}-{name}", grid.counts)
        scores = _scores(r["tasks"], r["report"])
        rows += [{"condition": condition, "fraction": fraction, "seed": seed, "task": task, "model": model,
                  "metric": metric, "score": value, "error": None if value is None else 1.0 - value,
                  "train_clips": len(picked), "steps": r["steps"], "seconds": round(r["seconds"], 1)}
                 for task, (metric, value) in scores.items()]
        log(f"  seed {seed} {fraction:>5.0%} {condition:<24} {model:<17} " + "  ".join(
            f"{t} {m} {v:.3f}" for t, (m, v) in scores.items() if v is not None) + f"  ({r['seconds']:.0f} s)")
    return rows


def _print_summary(result: dict[str, Any], fractions: list[float], out: Path) -> None:
    for line in table(result["summary"], fractions):
        log(line)
    key_base = result["baseline"].get("key", {})
    if isinstance(key_base, dict) and key_base.get("mirex") is not None:
        log(f"non-learned key baseline on test: MIREX {key_base['mirex']:.3f} (error {1 - key_base['mirex']:.3f})")
    for p in result["probes"]:
        log(f"probe {p['condition']:<24} {p['model']:<17} {p['label']:<8} {p['classifier']:<7} "
            f"accuracy {p['accuracy']:.3f} ± {p['std']:.3f} (chance {p['chance']:.3f})")
    plot(result["summary"], fractions, out / "scarcity.png")
    log(f"wrote {out / 'scarcity.json'} and {out / 'scarcity.png'} in {result['wall_seconds']:.0f} s")
    print(json.dumps({"bench": "scarcity", "summary": result["summary"], "wall_seconds": result["wall_seconds"]}))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _arguments(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    grid = _Grid(args, out)
    run_order = [float(f) for f in args.fractions.split(",")]
    fractions, seeds = sorted(run_order), [int(s) for s in args.seeds.split(",")]
    base_card, conditions = grid.cards["none"], grid.conditions
    result: dict[str, Any] = {
        "bench": "scarcity", "spec": str(grid.spec_path), "spec_hash": base_card["spec_hash"],
        "versions": base_card["versions"], "conditions": conditions, "fractions": fractions, "seeds": seeds,
        "tasks": grid.tasks, "steps": args.steps, "variants": args.variants,
        "datasets": {c: {"spec_hash": grid.cards[c]["spec_hash"],
                         "samples": {s: v["samples"] for s, v in grid.cards[c]["splits"].items()}}
                     for c in conditions},
        "runs": [], "baseline": {}, "probes": [],
    }

    def save() -> None:
        result["summary"] = summarise(result["runs"], conditions, fractions)
        result["wall_seconds"] = round(time.monotonic() - started, 1)
        (out / "scarcity.json").write_text(json.dumps(result, indent=1) + "\n")

    from mixtape.train.runs import baseline_run

    base_line = baseline_run(str(grid.datasets["none"]), "test")
    result["baseline"] = {k: v for k, v in base_line.items() if isinstance(v, (int, float, str, dict))}
    save()
    picks_by_seed = {seed: subsets(grid.train_clips, fractions, seed) for seed in seeds}
    # runs go in the order --fractions lists them, every seed of a fraction before the next fraction: an
    # interrupted grid still has mean ± std where it matters first
    for f in run_order:
        for seed in seeds:
            for c in conditions:
                result["runs"] += _run(grid, c, f, seed, list(picks_by_seed[seed][f]), args.steps, out)
                save()
    _probes(result, out, grid.datasets["none"], conditions, max(fractions), seeds[0], grid.tasks)
    save()
    _print_summary(result, fractions, out)
    return result


def _probes(result: dict[str, Any], out: Path, base: Path, conditions: list[str], fraction: float, seed: int,
            tasks: list[str]) -> None:
    """Logistic-regression and kNN probes (5-fold on the test clips) on embeddings of the largest fraction's
    models, for the class labels (genre, key) the models were trained on."""
    from mixtape.train.runs import embed_run
    from mixtape.train.transfer import ProbeError, probe

    for c in conditions:
        for name in ("key", "rest"):
            run = out / "runs" / f"{c}-{fraction}-{seed}-{name}"
            if not (run / "checkpoint.pt").exists():
                continue
            table_path = run / "test-embeddings.parquet"
            embed_run(str(run), str(base), str(table_path), split="test")
            for label in [t for t in tasks if t not in ("tags", "tempo")]:
                for classifier in ("logreg", "knn"):
                    try:
                        p = probe(table_path, label, classifier)
                    except ProbeError:
                        continue
                    if not np.isfinite(p.accuracy):  # folds too small for the classifier
                        continue
                    result["probes"].append({"condition": c, "model": MODELS[name][0], "label": label,
                                             "classifier": classifier, "accuracy": p.accuracy, "std": p.std,
                                             "chance": p.chance, "clips": p.n})


if __name__ == "__main__":
    main(sys.argv[1:])
