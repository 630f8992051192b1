"""``mixtape report DIR``: one self-contained HTML page (plus an assets folder) describing a built dataset.

Everything aggregated comes from the card, ``index.parquet``, ``clips.parquet`` and ``rejects.parquet``, so a
report of a million-sample dataset costs the same as one of a hundred; only the few seeded example samples
are read from their shards. Every piece of text from the collection (titles, names, tags) is HTML-escaped
and only http(s) links become anchors, since titles and URLs are whatever uploaders typed.
"""

from __future__ import annotations

import html
import io
import json
import re
import tarfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from mixtape import storage
from mixtape.dataset.api import DatasetError, open_dataset
from mixtape.dataset.card import CardError
from mixtape.dataset.index import class_map
from mixtape.dataset.names import BUILD_INFO, CLIPS_NAME, INDEX_NAME, REJECTS_NAME, check_shard_name
from mixtape.dataset.shardformat import iter_samples
from mixtape.hashing import rng_for
from mixtape.licences import licence_family
from mixtape.report import ReportError, figures
from mixtape.untrusted import UntrustedInputError, load_json, show

ASSETS = "assets"
#: In the assets folder: the names this report wrote (all a later report may remove).
ASSET_LIST = ".mixtape-assets"
ASSET_NAME = re.compile(r"^[0-9]{4}\.(png|flac|wav)$")
#: Marks a page as a mixtape report, so that a later report may replace it.
GENERATOR = '<meta name="generator" content="mixtape report">'
#: where ``mixtape report DIR`` writes unless told: inside the dataset folder (never listed by its card)
DEFAULT_FOLDER = "report"
TOP_TAGS = 30
MAX_AUG_PLOTS = 8


@dataclass
class Example:
    key: str
    split: str
    doc: dict[str, Any]
    audio_file: str
    image_file: str
    original: Example | None = None


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _n(value: Any, fmt: str = "") -> str:
    """A number as the page shows it; anything else (a card can hold anything) is shown escaped, as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, fmt)
    return _e(value if value is not None else "?")


def _link(url: str, text: str) -> str:
    if url.startswith(("https://", "http://")):
        return f'<a href="{_e(url)}" rel="noopener noreferrer">{_e(text)}</a>'
    return _e(text)


def _table(uri: str) -> list[dict[str, Any]]:
    if not storage.exists(uri):
        return []
    return storage.read_parquet(uri).to_pylist()


class _Assets:
    """The report's files in ``<out>/assets``. The folder is the report's only if a report wrote it: the
    names a report wrote are kept in ``assets/.mixtape-assets``, a new report removes exactly those, and a
    file it did not write is never replaced."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.n = 0
        self.names: list[str] = []

    def clear_previous(self) -> None:
        listing = self.folder / ASSETS / ASSET_LIST
        if listing.is_file():
            try:
                names = load_json(listing.read_bytes(), str(listing))
            except UntrustedInputError:
                names = []
            for name in names if isinstance(names, list) else []:
                if isinstance(name, str) and ASSET_NAME.match(name):
                    (self.folder / ASSETS / name).unlink(missing_ok=True)  # ok: a file the previous report listed
            listing.unlink()  # ok: the previous report's own list
        (self.folder / ASSETS).mkdir(parents=True, exist_ok=True)

    def add(self, data: bytes, ext: str) -> str:
        self.n += 1
        name = f"{self.n:04d}.{ext}"
        path = self.folder / ASSETS / name
        if path.exists():
            raise ReportError(f"{path} exists and no earlier report lists it: mixtape does not overwrite files it "
                              "did not write; choose another --out")
        path.write_bytes(data)
        self.names.append(name)
        return f"{ASSETS}/{name}"

    def finish(self) -> None:
        (self.folder / ASSETS / ASSET_LIST).write_text(json.dumps(self.names) + "\n")


def write_report(dataset: str, out: str | None = None, examples: int = 3, seed: int = 0,
                 log: Callable[[str], None] = lambda _m: None) -> Path:
    """Write ``<out>/index.html`` and ``<out>/assets/``; ``out`` defaults to ``<dataset>/report``. Anything
    wrong with the dataset (a damaged card, table or shard) is one :class:`ReportError`."""
    try:
        return _write_report(dataset, out, examples, seed, log)
    except ReportError:
        raise
    except CardError as e:
        raise ReportError(str(e)) from None
    except (OSError, ValueError, KeyError, TypeError, tarfile.TarError, sf.LibsndfileError) as e:
        raise ReportError(f"cannot report on {dataset}: {type(e).__name__}: {show(e)}") from None


def _own_folder(folder: Path) -> None:
    page = folder / "index.html"
    if page.exists() and GENERATOR.encode() not in page.read_bytes()[:4096]:
        raise ReportError(f"{page} is not a mixtape report and would be overwritten: choose another --out")


def _write_report(dataset: str, out: str | None, examples: int, seed: int, log: Callable[[str], None]) -> Path:
    try:
        opened = open_dataset(dataset)
    except DatasetError as e:
        raise ReportError(str(e)) from None
    base, card = opened.location, opened.card
    build_info = _build_info(storage.join(base, BUILD_INFO))
    index = opened.index() if storage.exists(storage.join(base, INDEX_NAME)) else []
    rejects = _table(storage.join(base, REJECTS_NAME))
    clips = _table(storage.join(base, CLIPS_NAME))
    folder = Path(out or (Path(base) / DEFAULT_FOLDER))
    _own_folder(folder)
    assets = _Assets(folder)
    assets.clear_previous()
    splits = list(card["splits"])
    steps: list[tuple[str, Callable[[], str]]] = [
        ("summary", lambda: _summary(card, build_info, rejects)),
        ("label plots", lambda: _labels(index, splits, assets)),
        ("audio statistics", lambda: _audio_stats(clips, splits, assets)),
        ("augmentation", lambda: _augmentation(index, assets)),
        ("licences", lambda: _licences(clips, index, assets)),
        ("examples (spectrograms and audio)", lambda: _examples(base, card, index, splits, examples, seed, assets)),
        ("attribution", lambda: _attribution(card)),
    ]
    sections = []
    for i, (name, make) in enumerate(steps, 1):
        log(f"report [{i}/{len(steps)}] {name} ...")
        sections.append(make())
    page = PAGE.format(title=_e(f"{card['name']} {card.get('version', '')} — mixtape report"),
                       generator=GENERATOR, body="\n".join(sections))
    assets.finish()
    (folder / "index.html").write_text(page, encoding="utf-8")
    return folder / "index.html"


def _build_info(uri: str) -> dict[str, Any]:
    """``build.json``, if it is a JSON object (its values are shown escaped or as numbers only)."""
    if not storage.exists(uri):
        return {}
    try:
        doc = load_json(storage.read_bytes(uri), BUILD_INFO)
    except UntrustedInputError:
        return {}
    return doc if isinstance(doc, dict) else {}


# ----------------------------------------------------------------------------------------------- sections


def _summary(card: dict[str, Any], build_info: dict[str, Any], rejects: list[dict[str, Any]]) -> str:
    acc = card["accounting"]
    hours = sum(s["sample_seconds"] for s in card["splits"].values()) / 3600
    rows = "".join(f"<tr><td>{_e(n)}</td><td>{_n(s['samples'])}</td><td>{len(s['shards'])}</td>"
                   f"<td>{_n(s['clips'])}</td><td>{_n(s['sample_seconds'] / 60, '.1f')}</td></tr>"
                   for n, s in card["splits"].items())
    by_reason: dict[str, list[str]] = {}
    for r in rejects:
        by_reason.setdefault(r["reason"], []).append(r["clip_id"])
    rej = "".join(f"<tr><td>{_e(reason)}</td><td>{len(ids)}</td><td>{_e(', '.join(sorted(ids)[:3]))}"
                  f"{' …' if len(ids) > 3 else ''}</td></tr>" for reason, ids in sorted(by_reason.items()))
    built = (f"{_n(build_info.get('wall_seconds'), '.1f')} s on the {_e(build_info.get('runner', '?'))} runner, "
             f"{_n(build_info.get('workers'))} worker(s)") if build_info else "not recorded"
    return f"""<section id="summary"><h1>{_e(card['name'])} <small>{_e(card.get('version', ''))}</small></h1>
<table class="kv">
<tr><th>spec hash</th><td><code>{_e(card['spec_hash'])}</code></td></tr>
<tr><th>audio</th><td>{_n(card['audio']['sample_rate'])} Hz, {_n(card['audio']['channels'])} channel(s),
 {_e(card['audio']['format'])}, {_n(card['audio']['snippet_seconds'], 'g')} s snippets</td></tr>
<tr><th>hours of samples</th><td>{_n(hours, '.2f')}</td></tr>
<tr><th>build time</th><td>{built}</td></tr>
<tr><th>accounting</th><td>clips in {_n(acc['clips_in'])} = used {_n(acc['clips_used'])} + rejected
 {_n(acc['clips_rejected'])}</td></tr>
</table>
<h2>Splits</h2>
<table><tr><th>split</th><th>samples</th><th>shards</th><th>clips</th><th>minutes</th></tr>{rows}</table>
<h2>Rejects</h2>
{f'<table><tr><th>reason</th><th>count</th><th>example clips</th></tr>{rej}</table>' if rej else '<p>none</p>'}
</section>"""


def _img(assets: _Assets, png: bytes, alt: str) -> str:
    return f'<img src="{assets.add(png, "png")}" alt="{_e(alt)}">'


def _labels(index: list[dict[str, Any]], splits: list[str], assets: _Assets) -> str:
    parts = ['<section id="labels"><h2>Labels per split</h2>']
    tag_counts = {s: Counter(t for r in index if r["split"] == s for t in (r["tags"] or [])) for s in splits}
    total: Counter[str] = Counter()
    for c in tag_counts.values():
        total.update(c)
    top = [t for t, _ in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TAGS]]
    if top:
        parts.append(_img(assets, figures.bar_chart(f"Tags (top {len(top)}, samples)", top,
                                                    {s: [tag_counts[s][t] for t in top] for s in splits},
                                                    "samples"), "tag histogram per split"))
    fields: dict[str, dict[str, Counter]] = {}
    for r in index:
        for field, value in class_map(r["classes"]).items():
            fields.setdefault(field, {s: Counter() for s in splits})[r["split"]][str(value)] += 1
    for field, per_split in sorted(fields.items()):
        values = sorted(set().union(*per_split.values()))
        parts.append(_img(assets, figures.bar_chart(f"Class {field}", values,
                                                    {s: [per_split[s][v] for v in values] for s in splits},
                                                    "samples"), f"{field} histogram per split"))
    keys = {s: Counter(r["musical_key"] for r in index if r["split"] == s and r["musical_key"]) for s in splits}
    key_names = sorted(set().union(*keys.values()))
    if key_names:
        parts.append(_img(assets, figures.bar_chart("Keys", key_names, {s: [keys[s][k] for k in key_names]
                                                                        for s in splits}, "samples"),
                          "key histogram per split"))
    tempi = {s: [r["tempo_bpm"] for r in index if r["split"] == s and r["tempo_bpm"]] for s in splits}
    if any(tempi.values()):
        parts.append(_img(assets, figures.histogram("Tempo", tempi, "bpm"), "tempo histogram per split"))
    parts.append("</section>")
    return "\n".join(parts)


def _audio_stats(clips: list[dict[str, Any]], splits: list[str], assets: _Assets) -> str:
    if not clips:
        return '<section id="audio"><h2>Durations and loudness</h2><p>this dataset has no clips.parquet ' \
               "(built before mixtape wrote one)</p></section>"
    samples = [c for c in clips if c["role"] == "sample"]
    durations = {s: [c["seconds"] for c in samples if c["split"] == s] for s in splits}
    loudness = {s: [c["loudness_db"] for c in samples if c["split"] == s and c["loudness_db"] is not None]
                for s in splits}
    return ('<section id="audio"><h2>Durations and loudness (source clips)</h2>'
            + _img(assets, figures.histogram("Clip duration", durations, "seconds"), "duration distribution")
            + _img(assets, figures.histogram("Clip loudness", loudness, "dBFS (mean level)"),
                   "loudness distribution") + "</section>")


def _augmentation(index: list[dict[str, Any]], assets: _Assets) -> str:
    params: dict[str, list[float]] = {}
    ops: Counter = Counter()
    for r in index:
        for step in r["augment"] or []:
            ops[step["op"]] += 1
            for k, v in step["params"] or []:
                params.setdefault(f"{step['op']}.{k}", []).append(float(v))
    if not ops:
        return '<section id="augmentation"><h2>Augmentation</h2><p>no augmented samples</p></section>'
    parts = ['<section id="augmentation"><h2>Augmentation</h2>',
             _img(assets, figures.bar_chart("Ops applied", sorted(ops), {"samples": [ops[o] for o in sorted(ops)]},
                                            "samples"), "augmentation ops")]
    chosen = sorted(params, key=lambda k: (-len(params[k]), k))[:MAX_AUG_PLOTS]
    for name in sorted(chosen):
        parts.append(_img(assets, figures.histogram(name, {name: params[name]}, name.split(".", 1)[1]),
                          f"distribution of {name}"))
    parts.append("</section>")
    return "\n".join(parts)


def _licences(clips: list[dict[str, Any]], index: list[dict[str, Any]], assets: _Assets) -> str:
    per_clip = ({c["clip_id"]: licence_family(c["licence"] or "") for c in clips}
                or {r["clip_id"]: r["licence_family"] for r in index})
    families = Counter(per_clip.values())
    names = sorted(families)
    return ('<section id="licences"><h2>Licences</h2>'
            + _img(assets, figures.bar_chart("Licence families (clips)", names,
                                             {"clips": [families[n] for n in names]}, "clips"), "licence breakdown")
            + "</section>")


def _choose(index: list[dict[str, Any]], split: str, n: int, seed: int) -> list[dict[str, Any]]:
    rows = sorted((r for r in index if r["split"] == split), key=lambda r: r["sample_key"])
    if not rows:
        return []
    order = rng_for(seed, f"report/{split}").permutation(len(rows))
    return [rows[i] for i in order[:n]]


def _examples(base: str, card: dict[str, Any], index: list[dict[str, Any]], splits: list[str], n: int,
              seed: int, assets: _Assets) -> str:
    by_key = {r["sample_key"]: r for r in index}
    chosen: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for split in splits:
        for r in _choose(index, split, n, seed):
            original = None
            if r["variant"]:
                original = by_key.get(f"{r['clip_id']}/{r['start_ms']}/0")
            chosen.append((split, r, original))
    wanted: dict[str, set[str]] = {}
    for _, r, o in chosen:
        for row in (r, o):
            if row is not None:
                wanted.setdefault(row["shard"], set()).add(row["sample_key"])
    found: dict[str, dict[str, Any]] = {}
    largest = max((s["bytes"] for info in card["splits"].values() for s in info["shards"]), default=0)
    for shard, keys in sorted(wanted.items(), key=lambda kv: str(kv[0])):
        with storage.open_url(storage.join(base, check_shard_name(shard))) as stream:  # an index row's name
            for sample in iter_samples(stream, max_member_bytes=largest):
                if sample["__key__"] in keys:
                    found[sample["__key__"]] = sample
                    if keys <= set(found):
                        break
    fmt = card["audio"]["format"]
    parts = ['<section id="examples"><h2>Examples</h2><p>Seeded samples per split; an augmented sample is shown '
             "beside its clean original.</p>"]
    current = None
    for split, r, o in chosen:
        if split != current:
            parts.append(f"<h3>{_e(split)}</h3>")
            current = split
        cells = [_example_cell(found.get(r["sample_key"]), fmt, card, assets, "sample")]
        if o is not None:
            cells.insert(0, _example_cell(found.get(o["sample_key"]), fmt, card, assets, "original"))
        parts.append(f'<div class="example">{"".join(cells)}</div>')
    parts.append("</section>")
    return "\n".join(parts)


def _example_cell(sample: dict[str, Any] | None, fmt: str, card: dict[str, Any], assets: _Assets,
                  role: str) -> str:
    if sample is None or fmt not in sample or not isinstance(sample.get("json"), dict):
        return '<div class="cell"><p>sample missing from its shard</p></div>'
    try:
        return _example_html(sample, fmt, assets, role)
    except ReportError:
        raise
    except Exception as e:  # a damaged sample is shown as such; the report goes on
        return f'<div class="cell"><p>sample {_e(sample["__key__"])} cannot be shown: {_e(type(e).__name__)}</p></div>'


def _example_html(sample: dict[str, Any], fmt: str, assets: _Assets, role: str) -> str:
    audio, sr = sf.read(io.BytesIO(sample[fmt]), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    doc = sample["json"]
    png = figures.spectrogram(np.asarray(mono), sr, f"{role}: {sample['__key__']}")
    image = assets.add(png, "png")
    sound = assets.add(sample[fmt], fmt)
    labels = doc.get("labels", {})
    label_bits = [f"tags: {', '.join(labels.get('tags') or []) or '–'}"]
    for field, value in sorted((labels.get("classes") or {}).items()):
        label_bits.append(f"{field}: {value}")
    if labels.get("key"):
        label_bits.append(f"key: {labels['key'].get('tonic')} {labels['key'].get('mode')}")
    if labels.get("tempo"):
        label_bits.append(f"tempo: {labels['tempo']} bpm")
    chain = doc.get("augment") or []
    aug = "; ".join(", ".join(f"{k}={v}" for k, v in step.items()) for step in chain) or "none (clean)"
    mime = "audio/flac" if fmt == "flac" else "audio/wav"
    return (f'<div class="cell"><h4>{_e(role)} <code>{_e(sample["__key__"])}</code></h4>'
            f'<img src="{image}" alt="log-mel spectrogram of {_e(sample["__key__"])}">'
            f'<audio controls preload="metadata"><source src="{sound}" type="{mime}"></audio>'
            f'<p class="labels">{_e(" · ".join(label_bits))}</p><p class="aug">augmentation: {_e(aug)}</p></div>')


def _attribution(card: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{_e(a['title'])}</td><td>{_e(a['author'])}</td><td>{_link(a['licence'], a['licence'])}"
                   f"</td><td>{_link(a['url'], a['url'])}</td></tr>" for a in card.get("attribution", []))
    return (f'<section id="attribution"><h2>Attribution ({len(card.get("attribution", []))} clips)</h2>'
            f"<table><tr><th>title</th><th>author</th><th>licence</th><th>source</th></tr>{rows}</table></section>")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
{generator}
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; padding: 0 1em; }}
h1 small {{ color: #777; font-weight: normal; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }}
table.kv th {{ color: #555; font-weight: normal; }}
img {{ max-width: 100%; display: block; margin: .5em 0; }}
.example {{ display: flex; gap: 1em; flex-wrap: wrap; border-top: 1px solid #eee; padding: .5em 0; }}
.cell {{ flex: 1 1 420px; }}
.cell h4 {{ margin: .2em 0; font-size: 12px; }}
.labels, .aug {{ font-size: 12px; margin: .2em 0; color: #444; }}
audio {{ width: 100%; }}
section {{ margin-bottom: 2em; }}
</style></head>
<body>
{body}
<footer><p>Written by mixtape from the dataset's card and index; examples read from their shards.</p></footer>
</body></html>
"""
