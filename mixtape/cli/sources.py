"""``mixtape freesound`` and ``mixtape fsd50k``: getting open collections into the layouts sources read."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mixtape.cli.common import COMMANDS


def _cmd_freesound(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.sources.freesound.client import FreesoundClient
    from mixtape.sources.freesound.download import FIELDS, download_dump

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    client = FreesoundClient.from_env(requests_per_minute=args.rpm, log=log)
    if args.action == "search":
        fields = args.fields.split(",") if args.fields else FIELDS
        n = 0
        for _, page in client.pages(client.search_url(args.query, args.filter, args.sort, fields, args.page_size)):
            for sound in page["results"]:
                print(json.dumps(sound, ensure_ascii=False))
                n += 1
                if n >= args.max:
                    return 0
        return 0
    report = download_dump(client, args.out, args.query, args.filter, args.sort, args.max, args.originals,
                           args.preview, args.page_size, args.restart, log=log, verbose=args.verbose)
    print(f"{len(report.downloaded)} downloaded, {len(report.skipped)} already there, {len(report.failed)} failed "
          f"of {report.sounds_listed} listed -> {args.out} (read it with `kind: freesound_dump`)")
    for sid, reason in report.failed:
        print(f"  failed {sid}: {reason}")
    return 1 if report.failed else 0


def _cmd_fsd50k(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.sources.fsd50k.unpack import unpack_release

    skipped: list[str] = []
    written = unpack_release(args.dist, args.out, skipped, log=lambda m: print(m, flush=True))
    for name in skipped:
        print(f"skipped {name}: only regular files are extracted")
    print(f"{len(written)} files -> {args.out} (read it with `kind: fsd50k, path: {args.out}`)")
    return 0


def add_parsers(sub: Any) -> None:
    f = sub.add_parser("freesound", help=COMMANDS["freesound"], description=COMMANDS["freesound"] +
                       ". Credentials come only from FREESOUND_API_KEY (search, previews) and FREESOUND_OAUTH_TOKEN "
                       "(original files); FREESOUND_API_BASE points at another server.")
    fsub = f.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("search", "print matching sounds as JSON lines"),
                         ("download", "download matching sounds into a local dump; rerun to resume")):
        a = fsub.add_parser(action, help=text, description=text)
        a.add_argument("query", help="text query (may be empty: '')")
        a.add_argument("--filter", help="Solr filter, e.g. 'tag:piano duration:[1 TO 30]'")
        a.add_argument("--sort", help="e.g. score, rating_desc, created_desc")
        a.add_argument("--max", type=int, default=100, help="at most this many sounds (default 100)")
        a.add_argument("--page-size", type=int, default=150)
        a.add_argument("--rpm", type=float, default=60, help="request budget per minute (default 60)")
        if action == "search":
            a.add_argument("--fields", help="comma-separated response fields (default: what a dump needs)")
        else:
            a.add_argument("--out", required=True, help="dump folder (metadata.jsonl + audio/)")
            a.add_argument("--originals", action="store_true", help="original files (needs FREESOUND_OAUTH_TOKEN)")
            a.add_argument("--preview", default="hq-ogg", help="preview quality: hq-ogg, hq-mp3, lq-ogg, lq-mp3")
            a.add_argument("--restart", action="store_true", help="forget an earlier download's state in --out")
            a.add_argument("--verbose", action="store_true", help="report every chunk written")
    f.set_defaults(func=_cmd_freesound)

    k = sub.add_parser("fsd50k", help=COMMANDS["fsd50k"], description=COMMANDS["fsd50k"])
    ksub = k.add_subparsers(dest="action", metavar="ACTION", required=True)
    unpack = ("extract every archive of the FSD50K release folder (split .zNN parts are read in place, not "
              "joined): each member goes to a temporary name and is renamed only after its CRC checks; symlink "
              "members are skipped and named; files already there are kept when identical, never overwritten")
    u = ksub.add_parser("unpack", help="extract every archive of the release folder (parts read in place)",
                        description=unpack)
    u.add_argument("dist", help="the folder with FSD50K.dev_audio.z01 … .zip, FSD50K.ground_truth.zip, …")
    u.add_argument("--out", required=True, help="where the FSD50K.* folders go")
    k.set_defaults(func=_cmd_fsd50k)
