"""Ingest: list every source, admit clips (one per id, licence and label rules), probe each once, and
keep one clip per distinct content. Every failure becomes a Reject with a reason."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from mixtape import storage
from mixtape.audio import AudioError, probe
from mixtape.dataset.shardformat import unsafe_key_problem
from mixtape.hashing import sha256_hex
from mixtape.labels import map_values
from mixtape.licences import licence_family
from mixtape.pipelines.progress import tally
from mixtape.records import Clip, Reject
from mixtape.sources.acousticbrainz.documents import document_files
from mixtape.sources.acousticbrainz.reader import audio_keys, file_partials, join_recording, table_partials
from mixtape.sources.common import audio_files
from mixtape.sources.registry import audio_roots, list_source
from mixtape.spec import DatasetSpec, SourceSpec
from mixtape.untrusted import clean_detail, show

REJECTS = "rejects"


def _list(indexed_source: tuple[int, SourceSpec]) -> Iterator:
    """Every clip and reject of one source. A reader that fails part-way (a file it cannot parse, a bug)
    costs only what it had not listed yet: the source gets an ``unreadable_source`` reject, and so does each
    of its audio files not yet accounted for, so ``clips_in`` still counts every file and the build goes on."""
    index, source = indexed_source
    listed = Metrics.counter("mixtape", "clips_in")
    seen: set[str] = set()
    try:
        for item in list_source(source):
            listed.inc()
            seen.add(item.relpath if isinstance(item, Clip) else item.path)
            if isinstance(item, Reject):
                yield pvalue.TaggedOutput(REJECTS, item)
            else:
                yield replace(item, source_index=index)
    except Exception as e:  # one broken source must not end the build: its remaining files are rejects
        problem = clean_detail(f"{type(e).__name__}: {e}")
        yield pvalue.TaggedOutput(REJECTS, _unreadable(source, problem))
        for item in _unlisted(source, seen, problem):
            listed.inc()
            yield pvalue.TaggedOutput(REJECTS, item)


def _unreadable(source: SourceSpec, problem: str) -> Reject:
    """The reject of a source whose reading failed part-way."""
    return Reject(f"{source.name}:{source.path}", source.path, "source", "unreadable_source", problem)


def _unlisted(source: SourceSpec, seen: set[str], problem: str) -> Iterator[Reject]:
    for folder, prefix in audio_roots(source):
        try:
            files = audio_files(folder, source.extensions)
        except OSError:
            continue
        for rel in files:
            if f"{prefix}{rel}" not in seen:
                yield Reject(f"{source.name}:{prefix}{rel}", f"{prefix}{rel}", "source", "unreadable_source",
                             f"not listed: reading the source failed ({problem})")


def admission_problem(clip: Clip, spec: DatasetSpec) -> tuple[str, str] | None:
    """Why a clip may not enter, from its metadata alone (a name that cannot be a sample key, licence, label
    vocabulary); None if it may."""
    unsafe = unsafe_key_problem(clip.clip_id)
    if unsafe:
        return "unsafe_name", unsafe
    family = licence_family(clip.licence)
    if not spec.licences.permits(family):
        return "licence_not_allowed", f"licence {clip.licence or '(none)'} ({family}) is not allowed by the spec"
    classes = clip.labels.get("classes", {})
    for fieldname, allowed in spec.labels.class_values:
        value = classes.get(fieldname)
        if value is not None and value not in allowed:
            return "label_not_in_vocabulary", f"{fieldname}={value!r} is not in labels.classes.{fieldname}"
    return None


def _admit(kv: tuple[str, Iterable[Clip]], spec: DatasetSpec) -> Iterator:
    """One clip per id (first source in spec order, then smallest path), then the metadata rules."""
    clip_id, clips = kv
    ordered = sorted(clips, key=lambda c: (c.source_index, c.relpath))
    first = ordered[0]
    for dup in ordered[1:]:
        yield pvalue.TaggedOutput(REJECTS, Reject(clip_id, dup.relpath, "source", "duplicate_clip_id",
                                                  f"{clip_id} is already provided by {first.relpath}"))
    if spec.labels.value_map:  # one spelling per value before any rule looks at it
        first = replace(first, labels=map_values(first.labels, spec.labels.maps))
    problem = admission_problem(first, spec)
    if problem:
        yield pvalue.TaggedOutput(REJECTS, Reject(clip_id, first.relpath, "admit", *problem))
    else:
        yield first


class ProbeClip(beam.DoFn):
    """Read and decode each clip once: exact length, format, checksum, peak and per-block loudness. A
    score clip is first rendered (its recipe drawn, its labels read from the score), then probed like any
    recording."""

    def __init__(self, max_channels: int, spec: DatasetSpec | None = None):
        self.max_channels = max_channels
        self.spec = spec
        self._scores: dict[str, Any] = {}

    def _settings(self, source: str) -> Any:
        from mixtape.sources.score.recipe import ScoreSettings

        if source not in self._scores:
            assert self.spec is not None, "score clips need the spec"
            src = next(s for s in self.spec.sources if s.name == source)
            self._scores[source] = ScoreSettings.of(src, self.spec.seed, self.spec.audio.sample_rate,
                                                    self.spec.audio.channels)
        return self._scores[source]

    def _render(self, clip: Clip, data: bytes) -> tuple[Clip, bytes] | Reject:
        from mixtape.sources.score.formats import ScoreError
        from mixtape.sources.score.recipe import realise

        settings = self._settings(clip.source)
        try:
            recipe, labels, audio, perf = realise(clip.clip_id, data, clip.synth, settings, clip.source_id)
        except ScoreError as e:
            return Reject(clip.clip_id, clip.relpath, "probe", e.reason, f"{show(clip.relpath)}: {e.detail}")
        labels["classes"] = {**labels["classes"], **clip.labels.get("classes", {})}
        if self.spec is not None and self.spec.labels.value_map:
            labels = map_values(labels, self.spec.labels.maps)
        composer = perf.composer or clip.artist
        credits = (f"composition: {composer or 'unknown'}; encoding: {show(clip.relpath)}"
                   f"{' (' + perf.rights + ')' if perf.rights else ''}; sound: {settings.font_licence}")
        return replace(clip, synth=recipe, labels=labels, title=perf.title or clip.title, artist=composer,
                       credits=credits), audio

    def process(self, clip: Clip) -> Iterator:
        def rejected(reason: str, detail: str) -> pvalue.TaggedOutput:
            return pvalue.TaggedOutput(REJECTS, Reject(clip.clip_id, clip.relpath, "probe", reason, detail))

        try:
            data = storage.read_bytes(clip.uri)
        except storage.NotRegularFile as e:
            yield rejected("not_a_file", f"{show(clip.relpath)} is {e.strerror}")
            return
        except OSError as e:
            yield rejected("unreadable", f"{show(clip.relpath)}: {e.strerror or e}")
            return
        if clip.synth:
            rendered = self._render(clip, data)
            if isinstance(rendered, Reject):
                yield pvalue.TaggedOutput(REJECTS, rendered)
                return
            clip, data = rendered
        windowed = clip.window_start or clip.window_end
        try:
            p = probe(data, clip.relpath,
                      (clip.window_start, clip.window_end, clip.window_unit) if windowed else None)
        except AudioError as e:
            yield rejected(e.reason, e.detail)
            return
        if p.channels > self.max_channels:
            yield rejected("unsupported_channels", f"{p.channels} channels; audio.max_source_channels is "
                           f"{self.max_channels}")
            return
        yield replace(clip, sha256=sha256_hex(data), sample_rate=p.sample_rate, channels=p.channels,
                      frames=p.frames, offset_frames=p.offset_frames, container=p.container,
                      bit_depth=p.bit_depth, peak_db=p.peak_db, block_rms_db=p.block_rms_db)


def _content_key(clip: Clip) -> str:
    return f"{clip.sha256}/{clip.offset_frames}/{clip.frames}"


def _one_per_content(kv: tuple[str, Iterable[Clip]]) -> Iterator:
    """The same audio under two ids (a file copied into two collections, a symlink): keep one, chosen by
    spec order then id, so the choice never depends on which worker saw which first."""
    _, clips = kv
    ordered = sorted(clips, key=lambda c: (c.source_index, c.clip_id))
    yield ordered[0]
    for dup in ordered[1:]:
        yield pvalue.TaggedOutput(REJECTS, Reject(dup.clip_id, dup.relpath, "dedupe", "duplicate_content",
                                                  f"same audio as {ordered[0].clip_id}"))


class Ingested(NamedTuple):
    """What ingest hands on."""

    clips: pvalue.PCollection  # of Clip: listed, admitted, probed, one per distinct content
    rejects: pvalue.PCollection  # of Reject: from every ingest stage


def _guarded(step: str, source: SourceSpec, items: Iterable[Any]) -> Iterator[Any]:
    """A keyed step's items, with a failure part-way turned into an ``unreadable_source`` reject (the
    build goes on; what the step had not yielded is named by the reject)."""
    try:
        yield from items
    except Exception as e:  # one broken file or table must not end the build
        problem = clean_detail(f"{type(e).__name__}: {e}")
        yield _unreadable(source, f"{step}: {problem}")


def _tag_keyed(index: int, items: Iterable[Any]) -> Iterator:
    """Keyed items as ((source index, mbid), value) for the join, rejects to their own output."""
    listed = Metrics.counter("mixtape", "clips_in")
    for item in items:
        if isinstance(item, Reject):
            listed.inc()
            yield pvalue.TaggedOutput(REJECTS, item)
        else:
            yield (index, item[0]), item[1]


def _join(kv: tuple[tuple[int, str], dict[str, list[Any]]], sources: dict[int, SourceSpec]) -> Iterator:
    (index, mbid), sides = kv
    source = sources[index]
    listed = Metrics.counter("mixtape", "clips_in")
    for item in _guarded("join", source, join_recording(source, mbid, sides["partials"], sides["audio"])):
        listed.inc()
        if isinstance(item, Reject):
            yield pvalue.TaggedOutput(REJECTS, item)
        else:
            yield replace(item, source_index=index)


def _document_files(indexed: tuple[int, SourceSpec]) -> Iterator[tuple[int, SourceSpec, int, str, str] | Reject]:
    index, source = indexed
    def listing() -> Iterator[list[tuple[str, str]]]:
        yield document_files(source.root)  # read inside the guard: a failure becomes a reject

    for files in _guarded("listing the documents", source, listing()):
        if isinstance(files, Reject):
            yield files
        else:
            yield from ((index, source, k, rel, uri) for k, (rel, uri) in enumerate(files))


def _read_documents(f: tuple[int, SourceSpec, int, str, str] | Reject) -> Iterator:
    if isinstance(f, Reject):  # the listing failed
        Metrics.counter("mixtape", "clips_in").inc()
        yield pvalue.TaggedOutput(REJECTS, f)
        return
    index, source, number, rel, uri = f
    yield from _tag_keyed(index, _guarded(f"reading {rel}", source, file_partials(source, number, rel, uri)))


def _read_tables(indexed: tuple[int, SourceSpec]) -> Iterator:
    index, source = indexed
    return _tag_keyed(index, _guarded("reading the genre and class tables", source, table_partials(source)))


def _list_audio(indexed: tuple[int, SourceSpec]) -> Iterator:
    index, source = indexed
    return _tag_keyed(index, _guarded("listing the audio", source, audio_keys(source)))


class JoinAcousticBrainz(beam.PTransform):
    """``kind: acousticbrainz`` sources, keyed by MusicBrainz recording id: every document file is read by
    whichever worker gets it, the genre and class tables and the audio tree are listed, and a CoGroupByKey
    on (source, MBID) meets each recording's documents with its audio files. No worker holds more than one
    recording's summary (a full dump is about 30 M documents). Clips and rejects as ``_list`` gives them."""

    def __init__(self, indexed_sources: list[tuple[int, SourceSpec]]):
        super().__init__()
        self.sources = list(indexed_sources)

    def expand(self, pbegin: pvalue.PBegin) -> Ingested:
        sources = pbegin | "Sources" >> beam.Create(self.sources)  # (index, SourceSpec)
        files = (sources
                 | "DocumentFiles" >> beam.FlatMap(_document_files)
                 | "SpreadFiles" >> beam.Reshuffle())  # (index, SourceSpec, file number, name, uri)
        documents = files | "ReadDocuments" >> beam.FlatMap(_read_documents).with_outputs(REJECTS, main="keyed")
        tables = sources | "ReadTables" >> beam.FlatMap(_read_tables).with_outputs(REJECTS, main="keyed")
        audio = sources | "ListAudio" >> beam.FlatMap(_list_audio).with_outputs(REJECTS, main="keyed")
        partials = (documents.keyed, tables.keyed) | "AllPartials" >> beam.Flatten()  # ((index, mbid), Partial)
        joined = ({"partials": partials, "audio": audio.keyed}
                  | "JoinOnMbid" >> beam.CoGroupByKey()  # ((index, mbid), {"partials": [...], "audio": [...]})
                  | "Join" >> beam.FlatMap(_join, dict(self.sources)).with_outputs(REJECTS, main="clips"))
        rejects = ((documents[REJECTS], tables[REJECTS], audio[REJECTS], joined[REJECTS])
                   | "Rejects" >> beam.Flatten())
        return Ingested(clips=joined.clips, rejects=rejects)


class Ingest(beam.PTransform):
    """The spec's sources -> probed, distinct clips and the rejects of every stage on the way, each clip
    decoded exactly once (the probe), so everything after it works on metadata."""

    def __init__(self, spec: DatasetSpec, progress_dir: str | None = None):
        super().__init__()
        self.spec = spec
        #: where a local build's progress tallies go (None: none kept)
        self.progress_dir = progress_dir

    def expand(self, pbegin: pvalue.PBegin) -> Ingested:
        spec = self.spec
        keyed = [(i, s) for i, s in enumerate(spec.sources) if s.kind == "acousticbrainz"]
        listed = (pbegin
                  | "Sources" >> beam.Create([(i, s) for i, s in enumerate(spec.sources)
                                              if s.kind != "acousticbrainz"])  # (index, SourceSpec)
                  | "ListClips" >> beam.FlatMap(_list).with_outputs(REJECTS, main="clips"))  # Clip, metadata only
        clip_parts, reject_parts = [listed.clips], [listed[REJECTS]]
        if keyed:
            joined = pbegin | "AcousticBrainz" >> JoinAcousticBrainz(keyed)
            clip_parts.append(joined.clips)
            reject_parts.append(joined.rejects)
        admitted = (clip_parts | "AllListed" >> beam.Flatten()
                    | "KeyById" >> beam.Map(lambda c: (c.clip_id, c))  # (clip id, Clip)
                    | "GroupById" >> beam.GroupByKey()  # (clip id, [Clip, ...]): duplicates of an id meet
                    | "Admit" >> beam.FlatMap(_admit, spec).with_outputs(REJECTS, main="clips"))  # Clip
        probed = (tally(admitted.clips, "CountListed", self.progress_dir, "listed")
                  | "Spread" >> beam.Reshuffle()
                  | "Probe" >> beam.ParDo(ProbeClip(spec.audio.max_source_channels, spec)).with_outputs(
                      REJECTS, main="clips"))  # Clip with length, rate, sha256, loudness per 100 ms
        distinct = (tally(probed.clips, "CountProbed", self.progress_dir, "probed")
                    | "KeyByContent" >> beam.Map(lambda c: (_content_key(c), c))  # (content key, Clip)
                    | "GroupByContent" >> beam.GroupByKey()  # (content key, [Clip, ...])
                    | "OnePerContent" >> beam.FlatMap(_one_per_content).with_outputs(REJECTS, main="clips"))
        probe_rejects = tally(probed[REJECTS], "CountProbeRejects", self.progress_dir, "probed")  # probed too
        rejects = ((*reject_parts, admitted[REJECTS], probe_rejects, distinct[REJECTS])
                   | "IngestRejects" >> beam.Flatten())
        return Ingested(clips=distinct.clips, rejects=rejects)
