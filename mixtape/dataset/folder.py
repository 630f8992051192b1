"""A dataset folder: what in it belongs to mixtape, who is writing it, and how a new build replaces it.

Rules every command that writes a dataset folder follows:

* **Only its own files.** A build deletes or replaces only what the folder's card lists (its shards and
  the fixed files beside them: ``dataset.json``, the tables, ``build.json``) and its own temporary files
  (``.tmp-<uuid>-<one of those names>``, the staging folder). Anything else in the folder is the user's
  and stays; a user's file that a build *would* overwrite (named like a shard, say) stops the build first.
* **The old dataset stays until the new one is complete.** A build writes into ``.mixtape-staging/`` and
  only when the pipeline has finished moves its files into place, card last; the previous card is set
  aside first, so while files move no card describes a half-updated folder, and the trainer (which
  checks shards against their card) can never read a mix. A failed or killed build leaves the previous
  dataset as it was.
* **One writer at a time.** ``.mixtape.lock`` holds the writer's pid and host; a second build into the same
  folder stops with one line. A lock whose process is gone (same host) is taken over.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from mixtape import storage
from mixtape.dataset.card import CardError, parse_card, shard_names
from mixtape.dataset.names import (
    BUILD_INFO,
    CARD_NAME,
    FIXED_NAMES,
    LOCK_NAME,
    PARTS_DIR,
    PREVIOUS_CARD,
    STAGING_DIR,
    TABLE_NAMES,
    is_own_temp,
    is_scratch_part,
    is_shard_name,
)
from mixtape.untrusted import UntrustedInputError, load_json, show


class OutputError(RuntimeError):
    """An output folder a build may not write (yet); the message says why and what to do."""


def staging(out_dir: str) -> str:
    return storage.join(out_dir, STAGING_DIR)


def parts(out_dir: str) -> str:
    """The scratch folder for per-shard tables, inside the staging folder."""
    return storage.join(staging(out_dir), PARTS_DIR)


# ----------------------------------------------------------------------------------------------------- lock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BuildLock:
    """``.mixtape.lock`` in the output folder for the duration of a build (see the module docstring). On
    object stores, which cannot create a file only if it is absent, the check is best effort."""

    def __init__(self, out_dir: str):
        self.path = storage.join(out_dir, LOCK_NAME)
        self.mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}, sort_keys=True).encode()

    def _holder(self) -> dict[str, Any]:
        try:
            doc = load_json(storage.read_bytes(self.path)[:4096], LOCK_NAME)
        except (OSError, UntrustedInputError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def _refuse(self, holder: dict[str, Any]) -> OutputError:
        who = (f"pid {show(holder.get('pid'))} on {show(holder.get('host'))}" if holder
               else "a process that left no pid")
        return OutputError(f"another build is writing {show(os.path.dirname(self.path))} ({who} holds {LOCK_NAME}): "
                           f"wait for it to finish, or delete {show(self.path)} if that build is gone")

    def __enter__(self) -> BuildLock:
        if storage.is_remote(self.path):
            if storage.exists(self.path):
                raise self._refuse(self._holder())
            storage.write_bytes(self.path, self.mine)
            return self
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder()
                pid = holder.get("pid")
                same_host = holder.get("host") == socket.gethostname()
                if isinstance(pid, int) and same_host and not _alive(pid):
                    os.remove(self.path)  # ok: a lock of ours whose build is gone
                    continue
                raise self._refuse(holder) from None
            with os.fdopen(fd, "wb") as f:
                f.write(self.mine)
            return self
        raise self._refuse(self._holder())

    def __exit__(self, *exc: Any) -> None:
        try:
            if storage.read_bytes(self.path) == self.mine:
                storage.delete(self.path)  # ok: our own lock
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------ ownership


@dataclass
class Existing:
    """What an output folder holds before a build: the valid card there (if any), and the names in it that
    mixtape wrote (so that a build may replace or delete them)."""

    card: dict[str, Any] | None = None
    owned: set[str] = field(default_factory=set)

    @property
    def has_dataset(self) -> bool:
        return bool(self.owned)


def _card_at(uri: str) -> dict[str, Any] | None:
    if not storage.exists(uri):
        return None
    return parse_card(storage.read_bytes(uri), show(uri))


def _listed(card: dict[str, Any] | None) -> set[str]:
    return set(shard_names(card)) if card else set()


def inspect_output(out_dir: str) -> Existing:
    """What the folder holds and which of it is mixtape's: the card's shards and fixed files, plus those of
    a build that was killed while moving its result into place (its cards wait in the staging folder)."""
    try:
        card = _card_at(storage.join(out_dir, CARD_NAME))
        interrupted = [_card_at(storage.join(staging(out_dir), n)) for n in (PREVIOUS_CARD, CARD_NAME)]
    except CardError as e:
        raise OutputError(f"{show(out_dir)} holds a dataset card mixtape cannot read ({e}); it may not be a "
                          "mixtape dataset: choose another --out, or move it away yourself") from None
    names = set(storage.list_dir(out_dir))
    cards = [c for c in (card, *interrupted) if c is not None]
    owned = set().union(*(_listed(c) for c in cards)) & names if cards else set()
    if cards:
        owned |= names & set(FIXED_NAMES)
    return Existing(card=card, owned=owned)


def check_output(out_dir: str, existing: Existing, overwrite: bool, incremental: bool) -> None:
    """Refuse a folder whose files a build would overwrite without owning them, or that holds a dataset
    the user has not said to replace or update."""
    names = storage.list_dir(out_dir)
    foreign = [n for n in names if (is_shard_name(n) or n in FIXED_NAMES) and n not in existing.owned]
    if foreign:
        whose = "its card does not list them" if existing.card else "there is no dataset.json that lists them"
        raise OutputError(f"{show(out_dir)} holds {', '.join(show(n) for n in foreign[:3])}"
                          f"{' …' if len(foreign) > 3 else ''}, named like a dataset's files, but {whose}: mixtape "
                          "did not write them and will not overwrite them; choose another --out")
    if existing.has_dataset and not (overwrite or incremental):
        shown = sorted(existing.owned)[:3]
        raise OutputError(f"{show(out_dir)} already holds a dataset ({', '.join(shown)}, ...): pass --incremental "
                          "to update it, --overwrite to replace it, or choose another --out")


def check_not_inside_sources(out_dir: str, folders: list[tuple[str, str]]) -> None:
    """A build writes in its output folder; one that is (inside) a source folder could replace its inputs."""
    if storage.is_remote(out_dir):
        return
    for where, folder in folders:
        if not storage.is_remote(folder) and os.path.isdir(folder) and storage.within(out_dir, folder):
            raise OutputError(f"--out {show(out_dir)} is inside the source folder {show(folder)} ({where}): a build "
                              "writes and replaces files in its output folder, so it must lie outside every source; "
                              "choose another --out")


# ------------------------------------------------------------------------------------------------- staging


def _ours_in_staging(name: str) -> bool:
    return is_shard_name(name) or name in (CARD_NAME, *TABLE_NAMES, PREVIOUS_CARD) or is_own_temp(name)


def clean_staging(out_dir: str) -> None:
    """Remove what a build left in the staging folder (only files of the names a build writes there)."""
    stage = staging(out_dir)
    for name in storage.list_dir(parts(out_dir)):
        if is_scratch_part(name) or is_own_temp(name):
            storage.delete(storage.join(parts(out_dir), name))
    storage.remove_empty_dir(parts(out_dir))
    for name in storage.list_dir(stage):
        if _ours_in_staging(name):
            storage.delete(storage.join(stage, name))
    storage.remove_empty_dir(stage)


def prepare_staging(out_dir: str) -> str:
    """An empty staging folder (what a killed build left there removed), with its parts folder."""
    clean_staging(out_dir)
    storage.makedirs(parts(out_dir))
    for name in storage.list_dir(out_dir):
        if is_own_temp(name):  # a killed writer's temporary file (a build's, or a previous mixtape's)
            storage.delete(storage.join(out_dir, name))
    return staging(out_dir)


def swap_in(out_dir: str, existing: Existing) -> dict[str, Any]:
    """Move a finished build from the staging folder into place, card last, then delete the previous
    dataset's files the new card does not list; returns the new card."""
    stage = staging(out_dir)
    new_card = _card_at(storage.join(stage, CARD_NAME))
    assert new_card is not None, "the build wrote no card"
    if existing.card is not None:  # from here until the new card lands, no card describes the folder
        storage.rename(storage.join(out_dir, CARD_NAME), storage.join(stage, PREVIOUS_CARD))
    staged = set(storage.list_dir(stage))
    for name in [*sorted(n for n in staged if is_shard_name(n)), *[n for n in TABLE_NAMES if n in staged]]:
        storage.rename(storage.join(stage, name), storage.join(out_dir, name))
    storage.rename(storage.join(stage, CARD_NAME), storage.join(out_dir, CARD_NAME))
    keep = _listed(new_card) | {CARD_NAME, *TABLE_NAMES, BUILD_INFO}
    for name in sorted(existing.owned - keep):
        storage.delete(storage.join(out_dir, name))  # ok: listed by the previous card, not by the new one
    clean_staging(out_dir)
    return new_card
