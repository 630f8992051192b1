"""Licence names and URLs as collections write them, reduced to families a spec can allow or deny.

Freesound writes deed URLs (``http://creativecommons.org/licenses/by-nc/3.0/``), pack readmes write prose
("Attribution Noncommercial"), other datasets write "CC BY-NC 3.0" or "Creative Commons 0"; one dataset
may say both 3.0 and 4.0. The family is what matters for use (may I train a commercial model on it?).
"""

from __future__ import annotations

import re

_URL = re.compile(r"creativecommons\.org/(?:licenses|publicdomain)/([a-z+-]+)/?", re.I)
_URL_FAMILIES = {"zero": "cc0", "mark": "public-domain", "by": "cc-by", "by-sa": "cc-by-sa", "by-nd": "cc-by-nd",
                 "by-nc": "cc-by-nc", "by-nc-sa": "cc-by-nc-sa", "by-nc-nd": "cc-by-nc-nd",
                 "sampling+": "sampling+", "nc-sampling+": "sampling-plus-nc", "sampling": "sampling+"}


def licence_family(text: str) -> str:
    """One of spec.LICENCE_FAMILIES; ``unknown`` when the text names no licence we recognise."""
    if not isinstance(text, str) or not text.strip():
        return "unknown"
    m = _URL.search(text)
    if m:
        return _URL_FAMILIES.get(m.group(1).lower(), "unknown")
    t = re.sub(r"[\s_]+", " ", text.lower()).strip()
    if re.search(r"\bcc ?0\b|creative commons 0|\bzero\b", t):
        return "cc0"
    if "public domain" in t:
        return "public-domain"
    if "sampling" in t:
        return "sampling-plus-nc" if ("noncommercial" in t or "nc" in t.split()) else "sampling+"
    nc = bool(re.search(r"non ?-?commercial|\bnc\b|-nc\b", t))
    nd = bool(re.search(r"no ?-?deriv|\bnd\b|-nd\b", t))
    sa = bool(re.search(r"share ?-?alike|\bsa\b|-sa\b", t))
    if re.search(r"attribution|\bcc[ -]?by\b|\bby\b", t):
        return "cc-by" + ("-nc" if nc else "") + ("-sa" if sa else "-nd" if nd else "")
    return "unknown"
