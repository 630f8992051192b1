"""``mixtape inspect``: a dataset described for people, from its card and index (no shard is opened)."""

from __future__ import annotations

from collections import Counter

from mixtape.dataset.api import open_dataset
from mixtape.licences import licence_family
from mixtape.untrusted import show


def describe(dataset: str, top: int = 8) -> list[str]:
    """Lines for people; every text read from the card or index is escaped (it may hold anything)."""
    opened = open_dataset(dataset)
    try:
        index = opened.index(["split", "tags", "musical_key", "tempo_bpm"])
    except (OSError, ValueError):  # no index (or not a Parquet file): the card alone is described
        index = []
    return [show(line, 2000) for line in _lines(opened.card, index, top)]


def _lines(card: dict, index: list[dict], top: int) -> list[str]:
    a = card["audio"]
    lines = [f"{card['name']} {card.get('version', '')} — spec {card['spec_hash'][:12]}, seed {card['seed']}, "
             f"{a['sample_rate']} Hz × {a['channels']} ch {a['format']}, {a['snippet_seconds']:g} s samples, "
             f"mixtape {card['versions'].get('mixtape')}"]
    total_h = sum(s["sample_seconds"] for s in card["splits"].values()) / 3600
    lines.append(f"{total_h:.2f} h of samples in "
                 f"{sum(len(s['shards']) for s in card['splits'].values())} shards")
    for split, s in card["splits"].items():
        lines.append(f"  {split:>6}: {s['samples']:6d} samples ({s['sample_seconds'] / 3600:.2f} h) in "
                     f"{len(s['shards']):4d} shards from {s['clips']:5d} clips ({s['source_seconds'] / 3600:.2f} h "
                     "of source audio)")
    acc = card["accounting"]
    lines.append(f"clips: {acc['clips_in']} in = {acc['clips_used']} used + {acc['clips_rejected']} rejected"
                 + (" (" + ", ".join(f"{r} {n}" for r, n in acc["rejects_by_reason"].items()) + ")"
                    if acc["rejects_by_reason"] else ""))
    aug = card.get("augmentation", {})
    if aug.get("augmented_samples"):
        lines.append(f"augmented samples: {aug['augmented_samples']} ("
                     + ", ".join(f"{op} {n}" for op, n in aug["ops"].items()) + ")")
    for split in card["splits"]:
        rows = [r for r in index if r["split"] == split]
        if not rows:
            continue
        tags = Counter(t for r in rows for t in r["tags"])
        keys = Counter(r["musical_key"] for r in rows if r["musical_key"])
        tempi = sorted(r["tempo_bpm"] for r in rows if r["tempo_bpm"] is not None)
        if tags:  # a split without tags gets no empty line
            lines.append(f"  {split} tags: " + ", ".join(f"{t} {n}" for t, n in tags.most_common(top)))
        if keys:
            lines.append(f"  {split} keys: " + ", ".join(f"{k} {n}" for k, n in keys.most_common(top)))
        if tempi:
            lines.append(f"  {split} tempo: median {tempi[len(tempi) // 2]:.1f} BPM "
                         f"(range {tempi[0]:.1f}–{tempi[-1]:.1f})")
    vocab = card["vocabularies"]
    if vocab["tags"]:
        lines.append(f"tag vocabulary ({len(vocab['tags'])}): " + ", ".join(vocab["tags"][:3 * top])
                     + (" …" if len(vocab["tags"]) > 3 * top else ""))
    for fieldname, values in vocab["classes"].items():
        lines.append(f"class {fieldname} ({len(values)}): " + ", ".join(values[:3 * top])
                     + (" …" if len(values) > 3 * top else ""))
    empty = [split for split, s in card["splits"].items() if not s["samples"]]
    if empty:
        lines.append("WARNING: " + ", ".join(f"split {s} has no samples" for s in empty))
    families = Counter(licence_family(a["licence"]) for a in card.get("attribution", []))
    lines.append("licences: " + ", ".join(f"{f} {n}" for f, n in sorted(families.items())))
    for name, f in card.get("features", {}).items():
        lines.append(f"features: {name} {f['shape'][0]}×{f['shape'][1]} {f['dtype']} (<key>.{f['member']})")
    return lines
