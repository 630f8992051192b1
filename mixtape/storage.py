"""Reading and writing bytes by path or URL, the same way on every runner.

Local paths go through the OS directly (fast, and symlinks and permissions behave as users expect); any
other scheme (gs://, s3://, ...) goes through Beam's FileSystems, which every runner's workers have.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from mixtape.errors import MixtapeError

HTTP_TIMEOUT = 60
#: The largest dataset card a reader accepts (a card lists shards and attribution: megabytes, not gigabytes).
MAX_CARD_BYTES = 1 << 30


class ShardURLError(MixtapeError, ValueError):
    pass


class NotRegularFile(OSError):
    """A path that is not a regular file (a FIFO, a socket, a device, a folder): reading it could block
    forever or never end, so mixtape never does."""


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"))


def file_kind(mode: int) -> str:
    """What a stat mode describes, in words ("a FIFO (named pipe)", ...); "a regular file" for files."""
    return next((what for test, what in _KINDS if test(mode)), "a regular file" if stat.S_ISREG(mode) else
                "not a regular file")


def open_local(path: str) -> IO[bytes]:
    """Open a local file for reading, refusing anything but a regular file (after following symlinks)
    without blocking: a FIFO is opened non-blocking, so no writer is waited for, then refused."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, f"{file_kind(mode)}, not an audio or metadata file", path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def within(path: str, root: str) -> bool:
    """Whether ``path``, with every symlink resolved, lies inside ``root`` (also resolved)."""
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


#: errno values that mean "this output cannot be written": no retry fixes them, and whichever worker met
#: them, the build reports them as one line (see ``pipelines.build.write_failure``).
WRITE_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted", errno.EFBIG: "file too large (a file-size limit)",
                errno.ENOTDIR: "a path component is not a folder"}


_configured = False


def configure(beam_args: Sequence[str] = ()) -> None:
    """Settle how Beam's FileSystems reach object stores, for this process: from Beam options such as
    ``--s3_endpoint_url`` / ``--s3_region_name`` (what a build passes after ``--``), and otherwise from the
    environment the cloud SDKs read (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_REGION``,
    ``GOOGLE_APPLICATION_CREDENTIALS``, ...). Credentials are never taken as arguments here: only the
    environment (or the SDK's own configuration files) holds them."""
    global _configured
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    FileSystems.set_options(PipelineOptions(list(beam_args)))
    _configured = True


def filesystems() -> Any:
    """Beam's FileSystems, configured (by :func:`configure`, or from the environment on first use)."""
    from apache_beam.io.filesystems import FileSystems

    if not _configured:
        configure()
    return FileSystems


def _open_remote(uri: str) -> Any:
    """An object's bytes as stored: Beam would otherwise decompress ``.gz`` / ``.bz2`` names on the fly, and
    a reader that checks sha256s or opens ``.tar.gz`` dumps itself must see the stored bytes."""
    from apache_beam.io.filesystems import CompressionTypes

    return filesystems().open(uri, compression_type=CompressionTypes.UNCOMPRESSED)


def open_url(url: str) -> IO[bytes]:
    """A binary stream for a local path, file://, http(s):// (urllib, in-process, never a shell), an object
    store Beam's FileSystems reach (gs://, s3://: the client stack builds write with), or any other scheme
    an installed fsspec filesystem serves."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme in ("", "file"):
        return open_local(_local(url))
    if scheme in ("http", "https"):
        return urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "mixtape"}),
                                      timeout=HTTP_TIMEOUT)
    try:
        return _open_remote(url)
    except ValueError as beam_error:  # a scheme Beam has no filesystem for: fsspec's, if it has one
        try:
            import fsspec

            return fsspec.open(url, "rb").open()
        except (ImportError, ValueError):
            raise ShardURLError(f"cannot open {url}: {beam_error} (gs:// needs apache-beam[gcp], s3:// "
                                "apache-beam[aws]; other schemes an fsspec filesystem)") from beam_error


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def _local(uri: str) -> str:
    return uri[len("file://"):] if uri.startswith("file://") else uri


def join(base: str, *parts: str) -> str:
    return posixpath.join(base, *parts) if is_remote(base) else os.path.join(_local(base), *parts)


def read_bytes(uri: str) -> bytes:
    if is_remote(uri):
        with _open_remote(uri) as f:
            return f.read()
    with open_local(_local(uri)) as f:
        return f.read()


def read_parquet(uri: str, schema: Any = None) -> Any:
    """A Parquet table by path or URL (a ``pyarrow.Table``).

    Read in one thread from the bytes in memory: the tables mixtape writes are small, and pyarrow 25's
    thread pool, once started on an in-memory file, aborts the interpreter at exit ("terminate called
    without an active exception") in about half of short-lived processes (measured: 17-19 of 30)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(read_bytes(uri)), schema=schema, use_threads=False)


def exists(uri: str) -> bool:
    if is_remote(uri):
        FileSystems = filesystems()

        return FileSystems.exists(uri)
    return os.path.exists(_local(uri))


def list_files(root: str) -> list[str]:
    """Every entry under ``root`` (recursively) that is not a folder, as sorted paths relative to it,
    '/'-separated: regular files, but also symlinks, FIFOs, sockets and devices, which a reader must account
    for (and never read: see :func:`open_local`)."""
    if is_remote(root):
        FileSystems = filesystems()

        prefix = root.rstrip("/") + "/"
        matches = FileSystems.match([prefix + "**"])[0].metadata_list
        return sorted(m.path[len(prefix):] for m in matches)
    base = Path(_local(root))
    out = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames.sort()
        for name in filenames:
            out.append((Path(dirpath) / name).relative_to(base).as_posix())
    return sorted(out)


@contextmanager
def atomic_write(uri: str, durable: bool = True) -> Iterator[IO[bytes]]:
    """Write to a temporary sibling and rename into place only when the block finishes without error.

    A reader never sees a partial file under the final name; a failed or killed writer leaves only a
    ``.tmp-`` file, which the next build of the same output removes. ``durable``: flushed to disk before the
    rename (a build's scratch files, which a crashed build never reuses, skip it).
    """
    tmp_name = f".tmp-{uuid.uuid4().hex}-{posixpath.basename(uri)}"
    if is_remote(uri):
        from apache_beam.io.filesystems import CompressionTypes

        FileSystems = filesystems()

        tmp = posixpath.join(posixpath.dirname(uri), tmp_name)
        f = FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED)
        try:
            yield f
            f.close()
            FileSystems.rename([tmp], [uri])  # ok: atomic write of our own temporary object
        except BaseException:
            f.close()
            FileSystems.delete([tmp])
            raise
        return
    path = _local(uri)
    tmp = os.path.join(os.path.dirname(path) or ".", tmp_name)
    f = open(tmp, "wb")
    try:
        yield f
        f.flush()
        if durable:
            os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)  # ok: atomic write of our own temporary file
    except BaseException:
        try:
            f.close()  # may fail again flushing its buffer (a full disk): the first error is the one to report
        except OSError:
            pass
        if os.path.exists(tmp):
            os.remove(tmp)  # ok: our own temporary file, after a failed write
        raise


def write_bytes(uri: str, data: bytes, durable: bool = True) -> None:
    with atomic_write(uri, durable) as f:
        f.write(data)


def list_dir(uri: str) -> list[str]:
    """The names directly inside a folder (files and folders), sorted; empty if it does not exist."""
    if is_remote(uri):
        FileSystems = filesystems()

        prefix = uri.rstrip("/") + "/"
        found = FileSystems.match([prefix + "*"])[0].metadata_list
        return sorted({m.path[len(prefix):].split("/", 1)[0] for m in found})
    try:
        return sorted(os.listdir(_local(uri)))
    except FileNotFoundError:
        return []


def rename(src: str, dst: str) -> None:
    """Move a file into place, replacing ``dst`` (atomic for local files on one file system)."""
    if is_remote(src):
        FileSystems = filesystems()

        FileSystems.rename([src], [dst])  # ok: object stores copy, then delete; callers move only what they own
        return
    os.replace(_local(src), _local(dst))  # ok: callers move only files a build owns


def delete(uri: str) -> None:
    """Remove one file (nothing if it is already gone)."""
    if is_remote(uri):
        FileSystems = filesystems()

        if FileSystems.exists(uri):
            FileSystems.delete([uri])
        return
    try:
        os.remove(_local(uri))  # ok: callers delete only files a build owns
    except FileNotFoundError:
        pass


def remove_empty_dir(uri: str) -> None:
    """Remove a folder if it is empty (object stores have no folders to remove)."""
    if is_remote(uri):
        return
    try:
        os.rmdir(_local(uri))
    except OSError:
        pass


def makedirs(uri: str) -> None:
    if not is_remote(uri):
        os.makedirs(_local(uri), exist_ok=True)
