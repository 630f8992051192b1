"""Reading a dataset card (``dataset.json``) that anybody may have written.

A card comes from a folder or a URL the user points at, so every field a reader uses is checked for its
type before it is used: a card whose ``splits.train.samples`` is ``"<script>…"`` or whose shard is named
``../x`` is refused with one line naming the field, instead of reaching an HTML page, a path or a format
string. Readers (train, evaluate, verify, report, inspect, incremental builds) take cards from here only.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mixtape import storage
from mixtape.dataset.names import CARD_NAME, CLIPS_NAME, INDEX_NAME, PLAN_NAME, REJECTS_NAME, SHARD_NAME, SPLIT_NAME
from mixtape.errors import MixtapeError
from mixtape.untrusted import UntrustedInputError, brief, load_json

#: What ``files`` must say: the card names its tables, but a reader never follows a name to elsewhere.
CARD_FILES = {"index": INDEX_NAME, "rejects": REJECTS_NAME, "plan": PLAN_NAME, "clips": CLIPS_NAME}
AUDIO_FORMATS = ("flac", "wav")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class CardError(MixtapeError, ValueError):
    """A card that cannot be used; the message names the card, the field and what is wrong."""


def _fail(where: str, path: str, expected: str, value: Any) -> CardError:
    return CardError(f"{where}: {path} must be {expected}; got {brief(value)}")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _strs(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _need(ok: bool, where: str, path: str, expected: str, value: Any) -> None:
    if not ok:
        raise _fail(where, path, expected, value)


def _check_shard(shard: Any, split: str, where: str, path: str) -> None:
    _need(isinstance(shard, dict), where, path, "an object", shard)
    name = shard.get("name")
    match = SHARD_NAME.match(name) if isinstance(name, str) else None
    _need(match is not None and match.group(1) == split, where, f"{path}.name",
          f"a shard name of split {split} ({split}-NNNNNN.tar)", name)
    for key in ("samples", "bytes"):
        _need(_int(shard.get(key)), where, f"{path}.{key}", "a whole number", shard.get(key))
    _need(isinstance(shard.get("sha256"), str) and _HEX64.match(shard["sha256"]) is not None, where,
          f"{path}.sha256", "64 hex digits", shard.get("sha256"))


def _check_splits(splits: Any, where: str) -> None:
    _need(isinstance(splits, dict) and bool(splits), where, "splits", "an object of splits", splits)
    for split, info in splits.items():
        _need(isinstance(split, str) and SPLIT_NAME.match(split) is not None, where, "splits",
              "keyed by split names (lower-case words)", split)
        path = f"splits.{split}"
        _need(isinstance(info, dict), where, path, "an object", info)
        for key in ("samples", "clips"):
            _need(_int(info.get(key)), where, f"{path}.{key}", "a whole number", info.get(key))
        for key in ("source_seconds", "sample_seconds"):
            _need(_num(info.get(key)), where, f"{path}.{key}", "a number", info.get(key))
        shards = info.get("shards")
        _need(isinstance(shards, list), where, f"{path}.shards", "a list", shards)
        for i, shard in enumerate(shards):
            _check_shard(shard, split, where, f"{path}.shards[{i}]")


def _check_audio(audio: Any, where: str) -> None:
    _need(isinstance(audio, dict), where, "audio", "an object", audio)
    _need(_int(audio.get("sample_rate")) and audio["sample_rate"] > 0, where, "audio.sample_rate",
          "a positive whole number", audio.get("sample_rate"))
    _need(_int(audio.get("channels")) and audio["channels"] > 0, where, "audio.channels", "a positive whole number",
          audio.get("channels"))
    _need(audio.get("format") in AUDIO_FORMATS, where, "audio.format", f"one of {', '.join(AUDIO_FORMATS)}",
          audio.get("format"))
    _need(_num(audio.get("snippet_seconds")), where, "audio.snippet_seconds", "a number",
          audio.get("snippet_seconds"))


def _check_vocabularies(vocab: Any, where: str) -> None:
    _need(isinstance(vocab, dict), where, "vocabularies", "an object", vocab)
    _need(_strs(vocab.get("tags", [])), where, "vocabularies.tags", "a list of strings", vocab.get("tags"))
    _need(_strs(vocab.get("key", [])), where, "vocabularies.key", "a list of strings", vocab.get("key"))
    classes = vocab.get("classes", {})
    _need(isinstance(classes, dict) and all(isinstance(k, str) and _strs(v) for k, v in classes.items()), where,
          "vocabularies.classes", "an object of string lists", classes)


def _check_accounting(acc: Any, where: str) -> None:
    _need(isinstance(acc, dict), where, "accounting", "an object", acc)
    for key in ("clips_in", "clips_used", "clips_rejected"):
        _need(_int(acc.get(key)), where, f"accounting.{key}", "a whole number", acc.get(key))
    reasons = acc.get("rejects_by_reason", {})
    _need(isinstance(reasons, dict) and all(isinstance(k, str) and _int(v) for k, v in reasons.items()), where,
          "accounting.rejects_by_reason", "an object of counts", reasons)


def _check_attribution(rows: Any, where: str) -> None:
    _need(isinstance(rows, list), where, "attribution", "a list", rows)
    for i, row in enumerate(rows):
        _need(isinstance(row, dict) and all(isinstance(row.get(k, ""), str) for k in
                                            ("clip_id", "title", "author", "licence", "url")),
              where, f"attribution[{i}]", "an object of strings", row)


def validate_card(card: Any, where: str = CARD_NAME) -> dict[str, Any]:
    """The card, if every field readers use has the type they expect; else :class:`CardError`."""
    _need(isinstance(card, dict), where, "the card", "a JSON object", card)
    for key in ("name", "spec_hash"):
        _need(isinstance(card.get(key), str), where, key, "a string", card.get(key))
    _need(isinstance(card.get("version", ""), str), where, "version", "a string", card.get("version"))
    _need(_int(card.get("seed")), where, "seed", "a whole number", card.get("seed"))
    versions = card.get("versions", {})
    _need(isinstance(versions, dict) and all(isinstance(v, str) for v in versions.values()), where, "versions",
          "an object of version strings", versions)
    _check_audio(card.get("audio"), where)
    _check_splits(card.get("splits"), where)
    _check_vocabularies(card.get("vocabularies", {}), where)
    _check_accounting(card.get("accounting"), where)
    _check_attribution(card.get("attribution", []), where)
    files = card.get("files", CARD_FILES)
    _need(files == CARD_FILES, where, "files", f"{CARD_FILES} (the tables sit beside the card)", files)
    for key in ("augmentation", "features", "spec"):
        _need(isinstance(card.get(key, {}), dict), where, key, "an object", card.get(key))
    aug = card.get("augmentation", {})
    _need(_int(aug.get("augmented_samples", 0)), where, "augmentation.augmented_samples", "a whole number",
          aug.get("augmented_samples"))
    ops = aug.get("ops", {})
    _need(isinstance(ops, dict) and all(isinstance(k, str) and _int(v) for k, v in ops.items()), where,
          "augmentation.ops", "an object of counts", ops)
    for name, feature in card.get("features", {}).items():
        shape = feature.get("shape") if isinstance(feature, dict) else None
        _need(isinstance(shape, list) and len(shape) == 2 and all(_int(x) for x in shape)
              and isinstance(feature.get("dtype"), str) and isinstance(feature.get("member"), str),
              where, f"features.{name}", "an object with shape [a, b], dtype and member", feature)
    return card


def parse_card(data: bytes, where: str = CARD_NAME) -> dict[str, Any]:
    try:
        doc = load_json(data, where)
    except UntrustedInputError as e:
        raise CardError(str(e)) from None
    return validate_card(doc, where)


def read_card(uri: str) -> dict[str, Any]:
    """The validated card at ``uri`` (a ``dataset.json`` path or URL)."""
    try:
        with storage.open_url(uri) as f:
            data = f.read(storage.MAX_CARD_BYTES + 1)
    except (OSError, ValueError) as e:
        raise CardError(f"cannot read {uri}: {e}") from None
    if len(data) > storage.MAX_CARD_BYTES:
        raise CardError(f"{uri} is larger than {storage.MAX_CARD_BYTES >> 20} MB: not a dataset card")
    return parse_card(data, uri)


def shard_names(card: dict[str, Any], split: str | None = None) -> list[str]:
    """Every shard name the card lists (of one split), each already checked by :func:`validate_card`."""
    splits = card["splits"].values() if split is None else [card["splits"][split]]
    return [s["name"] for info in splits for s in info["shards"]]


def shard_checks(card: dict[str, Any], urls: list[str], card_url: str | None = None) -> dict[str, tuple[str, int]]:
    """url -> (sha256, bytes) for each of ``urls`` the card lists: what a reader checks a shard against
    before trusting it. With ``card_url``, only shards beside the card are its own (shards of another
    dataset in the same training may have the same names); without it, shards are matched by file name."""
    listed = {s["name"]: (s["sha256"], s["bytes"]) for info in card["splits"].values() for s in info["shards"]}
    folder = card_url.rsplit("/", 1)[0] if card_url else None
    return {u: listed[u.rsplit("/", 1)[-1]] for u in urls
            if u.rsplit("/", 1)[-1] in listed and (folder is None or u.rsplit("/", 1)[0] == folder)}
