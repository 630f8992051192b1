"""``mixtape verify``: prove a dataset copy is intact, and that its shards can be made again.

Checks, against the card (``dataset.json``): every shard is there with its size, sha256 and sample count;
each shard's members match the index (every index row in its shard and vice versa, member by member by
sha256, so a flipped byte is traced to the sample that holds it); no stray shards. With ``rerender``, a
seeded subset of shards is rendered again from ``plan.parquet`` and the original inputs and compared byte
for byte; when they differ, the versions that can change output are compared with the card's.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from mixtape import storage
from mixtape.audio import AudioError
from mixtape.dataset.card import read_card
from mixtape.dataset.features import MEMBER_SUFFIX
from mixtape.dataset.index import read_index
from mixtape.dataset.names import BUILD_INFO, CARD_NAME, INDEX_NAME, PLAN_NAME, UnsafeName, check_shard_name
from mixtape.dataset.shardformat import iter_members, split_member_name
from mixtape.hashing import rng_for
from mixtape.records import PlanRow
from mixtape.spec import spec_from_dict
from mixtape.untrusted import UntrustedInputError, load_json, show

VERIFY_STREAM = "verify"


@dataclass
class VerifyReport:
    shards_checked: int = 0
    samples_checked: int = 0
    rerendered: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _members(shard: bytes, max_member_bytes: int) -> tuple[dict[str, str], list[str], str | None]:
    """member name -> sha256 of its bytes (the members a reader loads), the members a reader skips (with the
    reason), and the error that stopped reading (a damaged header), if any."""
    out: dict[str, str] = {}
    skipped: list[str] = []
    try:
        for key, suffix, data in iter_members(io.BytesIO(shard), lambda name, why: skipped.append(f"{name} ({why})"),
                                              max_member_bytes):
            out[f"{key}.{suffix}"] = hashlib.sha256(data).hexdigest()
    except (tarfile.TarError, OSError, EOFError) as e:
        return out, skipped, f"{type(e).__name__}: {show(e)}"
    return out, skipped, None


def _compare_members(name: str, shard: bytes, rows: list[dict[str, Any]], fmt: str, report: VerifyReport) -> None:
    members, skipped, error = _members(shard, len(shard))
    for member in skipped:
        report.problems.append(f"{name}: member {member} is not one a reader loads")
    expected = {}
    for r in rows:
        key = r["sample_key"]
        expected[f"{key}.{fmt}"] = (key, r["audio_sha256"])
        expected[f"{key}.json"] = (key, r["json_sha256"])
        if r.get("logmel_sha256"):
            expected[f"{key}.{MEMBER_SUFFIX}"] = (key, r["logmel_sha256"])
    for member, (key, sha) in sorted(expected.items()):
        if member not in members:
            if error is None:
                report.problems.append(f"{name}: sample {show(key)} has no member {show(member)}")
        elif members[member] != sha:
            report.problems.append(f"{name}: sample {show(key)}: member {member} differs from the index "
                                   f"(sha256 {members[member][:12]}…, expected {sha[:12]}…)")
    for member in sorted(set(members) - set(expected)):
        report.problems.append(f"{name}: member {show(member)} (sample {show(split_member_name(member)[0])}) is not "
                               "in the index")
    if error is not None:
        read = sorted({split_member_name(m)[0] for m in members})
        after = f" after {len(read)} readable samples (last: {show(read[-1])})" if read else " at its start"
        report.problems.append(f"{name}: the tar is damaged{after}: {error}")


def check(dataset: str) -> tuple[VerifyReport, dict[str, Any]]:
    report = VerifyReport()
    card = read_card(storage.join(dataset, CARD_NAME))
    fmt = card["audio"]["format"]
    index_path = storage.join(dataset, INDEX_NAME)
    index = read_index(index_path) if storage.exists(index_path) else []
    expected = sum(int(s["samples"]) for s in card["splits"].values())
    if not storage.exists(index_path):
        report.problems.append(f"{INDEX_NAME} is missing")
    elif not index and expected:
        report.problems.append(f"{INDEX_NAME} is empty, but the card lists {expected} samples")
    for split, info in card["splits"].items():  # the card says so: a note, not damage
        if not info["samples"]:
            report.notes.append(f"split {split} has no samples (its build allowed it: splits.allow_empty)")
    by_shard: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in index:
        by_shard[r["shard"]].append(r)
    listed = set()
    for split, info in card["splits"].items():
        for shard in info["shards"]:
            name = shard["name"]
            listed.add(name)
            path = storage.join(dataset, name)
            rows = sorted(by_shard.get(name, []), key=lambda r: r["order"])
            if len(rows) != shard["samples"]:
                report.problems.append(f"{name}: the index has {len(rows)} samples, the card {shard['samples']}")
            if not storage.exists(path):
                report.problems.append(f"{name}: missing ({shard['samples']} samples of {split})")
                continue
            report.shards_checked += 1
            report.samples_checked += shard["samples"]
            data = storage.read_bytes(path)
            size, sha = len(data), hashlib.sha256(data).hexdigest()
            if size == shard["bytes"] and sha == shard["sha256"]:
                continue
            report.problems.append(f"{name}: sha256 {sha[:12]}… ({size} bytes) but the card says "
                                   f"{shard['sha256'][:12]}… ({shard['bytes']} bytes)")
            _compare_members(name, data, rows, fmt, report)
    for stray in sorted(set(by_shard) - listed, key=str):
        report.problems.append(f"{show(stray)}: in the index but not in the card")
    for f in storage.list_dir(dataset):
        if f.endswith(".tar") and f not in listed:
            report.problems.append(f"{show(f)}: a shard file the card does not list")
    return report, card


def source_roots(dataset: str, spec_path: str | None = None) -> dict[str, str]:
    """Where the inputs are: from a spec file given now, else from the build's record (``build.json``)."""
    if spec_path:
        from mixtape.spec import load_spec

        return {s.name: s.root for s in load_spec(spec_path).sources}
    info_path = storage.join(dataset, BUILD_INFO)
    if not storage.exists(info_path):
        raise FileNotFoundError(f"{info_path} is missing: pass --spec SPEC.yaml so the inputs can be found")
    info = load_json(storage.read_bytes(info_path), BUILD_INFO)
    roots = info.get("source_roots") if isinstance(info, dict) else None
    if not isinstance(roots, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in roots.items()):
        raise FileNotFoundError(f"{info_path} does not say where the inputs are: pass --spec SPEC.yaml")
    return roots


def soundfonts(dataset: str, card: dict[str, Any], spec_path: str | None = None) -> dict[str, str]:
    """sha256 -> path of the SoundFonts rendered scores need: a spec file given now, else the build's
    record, else the card's spec as this machine resolves it (the built-in SoundFont)."""
    from mixtape.sources.score.recipe import score_fonts
    from mixtape.sources.score.synth import SynthError

    if spec_path:
        from mixtape.spec import load_spec

        return score_fonts(load_spec(spec_path))
    info_path = storage.join(dataset, BUILD_INFO)
    info = load_json(storage.read_bytes(info_path), BUILD_INFO) if storage.exists(info_path) else {}
    fonts = info.get("soundfonts") if isinstance(info, dict) else None
    if isinstance(fonts, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in fonts.items()):
        return fonts
    try:
        return score_fonts(spec_from_dict(card["spec"]))
    except SynthError:
        return {}


def environment_differences(card: dict[str, Any]) -> list[str]:
    from mixtape.sources.score.recipe import tool_versions
    from mixtape.versions import package_versions

    now = package_versions()
    if "synthesiser" in card["versions"]:
        now.update(tool_versions())
    return [f"{k}: {card['versions'].get(k)} in the card, {v} here" for k, v in sorted(now.items())
            if card["versions"].get(k) != v]


def rerender(dataset: str, card: dict[str, Any], fraction: float, seed: int, roots: dict[str, str],
             report: VerifyReport, spec_path: str | None = None) -> None:
    """Render a seeded random subset of shards again from the stored plan and compare the bytes."""
    from mixtape.rendering import InputChanged, SourceCache, render_shard

    shards = [s for info in card["splits"].values() for s in info["shards"]]
    k = min(len(shards), max(1, math.ceil(fraction * len(shards)))) if fraction > 0 and shards else 0
    chosen = sorted(rng_for(card["seed"], VERIFY_STREAM, str(seed)).choice(len(shards), size=k, replace=False))
    plan = storage.read_parquet(storage.join(dataset, PLAN_NAME)).to_pylist()
    by_shard: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in plan:
        by_shard[r["shard"]].append(r)
    index = read_index(storage.join(dataset, INDEX_NAME))
    spec = spec_from_dict(card["spec"])  # the card's normalised spec: the same render settings as the build
    audio, logmel_spec = spec.audio, spec.logmel
    # shared by the chosen shards, as a build's worker shares it
    cache = SourceCache(audio, fonts=soundfonts(dataset, card, spec_path))
    with tempfile.TemporaryDirectory(prefix="mixtape-verify-") as tmp:
        for i in chosen:
            shard = shards[i]
            report.rerendered.append(shard["name"])
            try:
                # plan records are untrusted too: an input path outside its source is refused, not read
                rows = [PlanRow.from_record(load_json(r["record"], PLAN_NAME), roots)
                        for r in sorted(by_shard[shard["name"]], key=lambda r: r["order"])]
                # shard names come from the card: checked, and the bytes go to a temporary folder only
                info, _ = render_shard(check_shard_name(shard["name"]), rows, audio, tmp, logmel_spec, cache)
            except (InputChanged, OSError, AudioError, UnsafeName, UntrustedInputError, ValueError, KeyError,
                    TypeError) as e:
                report.problems.append(f"{shard['name']}: cannot re-render: {show(e)}")
                continue
            if info["sha256"] != shard["sha256"]:
                report.problems.append(f"{shard['name']}: re-rendered bytes differ from the card "
                                       f"({info['sha256'][:12]}… vs {shard['sha256'][:12]}…)")
                _compare_members(shard["name"], storage.read_bytes(os.path.join(tmp, shard["name"])),
                                 [r for r in index if r["shard"] == shard["name"]], audio.format, report)
                diffs = environment_differences(card)
                report.notes.append("versions that can change output differ: " + "; ".join(diffs)
                                    + f"; `mixtape env {dataset}` prints the install commands that recreate "
                                      "the card's" if diffs else
                                    "every recorded version matches: an input or the plan must have changed")


def verify(dataset: str, rerender_fraction: float = 0.0, seed: int = 0, spec_path: str | None = None
           ) -> VerifyReport:
    report, card = check(dataset)
    if rerender_fraction > 0:
        rerender(dataset, card, rerender_fraction, seed, source_roots(dataset, spec_path), report, spec_path)
    return report
