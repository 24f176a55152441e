"""Reading the small text files an operator names (a training config, a policy): a regular file of bounded
size, so that a path such as ``/dev/urandom``, a pipe or a data file given by mistake is refused with words
instead of being read until memory runs out (or waited on for ever)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

SMALL_FILE_BYTES = 1 << 20  # a config or a policy is a few kilobytes; a megabyte is far beyond any


def read_small_text(path: Path, limit: int = SMALL_FILE_BYTES) -> str:
    """The UTF-8 text of the regular file at ``path``; ``OSError`` (its ``strerror`` says why) when it is
    missing, not a regular file, larger than ``limit`` bytes or not UTF-8 text."""
    if not stat.S_ISREG(os.stat(path).st_mode):  # before opening: opening a pipe waits for a writer
        raise OSError(errno.EINVAL, "not a regular file")
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit:,} bytes, too large for a config or policy file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OSError(errno.EILSEQ, f"not a text file (byte {exc.start} is not UTF-8)") from exc
