"""Reading what other people wrote: JSON documents, names and values that reach messages.

Everything a build or a reader takes from outside (metadata files, sidecars, dataset cards, shard members,
server responses) is parsed and quoted through these functions, so that a hostile or broken input becomes
one clear error instead of a crash, and a message never carries an object's memory address, a raw control
character or a megabyte of repr.
"""

from __future__ import annotations

import json
import re
import reprlib
from typing import Any

from mixtape.errors import MixtapeError

#: The longest text a message quotes from an input; the rest is elided.
QUOTE_LIMIT = 160

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 6
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlong = 40

#: ``<_io.BytesIO object at 0x7f…>`` and the like: differs per process, so never part of an output.
_OBJECT_REPR = re.compile(r"<([A-Za-z_][\w.]*)(?: object)? at 0x[0-9A-Fa-f]+>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class UntrustedInputError(MixtapeError, ValueError):
    """An input that cannot be read safely; the message says which and why."""


def load_json(data: bytes | str, what: str) -> Any:
    """Parse JSON from an input named ``what``; any failure (bad syntax, bad UTF-8, nesting deep enough to
    exhaust the parser's recursion) is an :class:`UntrustedInputError` naming it."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        return json.loads(text)
    except RecursionError:
        raise UntrustedInputError(f"{what}: JSON nested too deeply to read") from None
    except UnicodeDecodeError as e:
        raise UntrustedInputError(f"{what}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except ValueError as e:
        raise UntrustedInputError(f"{what}: not valid JSON ({e})") from None


def brief(value: Any) -> str:
    """A bounded repr of any value, for error messages: nested and long values are elided, so quoting a
    hostile value (an alias bomb, a megabyte string) costs nothing."""
    return _REPR.repr(value)


def show(text: Any, limit: int = QUOTE_LIMIT) -> str:
    """Text as a message may print it: control characters (newlines included) escaped, at most ``limit``
    characters, so a name read from a file can never forge a line of output."""
    s = str(text)
    if len(s) > limit:
        s = s[:limit] + "…"
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), s)


def clean_detail(text: str, limit: int = 500) -> str:
    """A reject's detail as the rejects table stores it: object reprs (which carry memory addresses and so
    differ between runs) replaced by their type, control characters escaped, length bounded."""
    return show(_OBJECT_REPR.sub(lambda m: f"<{m.group(1).rsplit('.', 1)[-1]}>", text), limit)
