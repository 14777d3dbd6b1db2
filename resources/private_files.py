"""Files and folders that hold data are private to the OS user that runs c360.

The warehouse, landing copies, the stack's directories and its keys are created owner-only
(``0700`` folders, ``0600`` files): what is below a private folder is out of other users' reach
whatever its own mode, and a key is created with its final mode, never readable for a moment.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path, mode: int = PRIVATE_DIR) -> Path:
    """Create ``path`` (and missing parents, with the process's usual mode) and give the folder
    itself ``mode``; an existing folder of this user that is more open is closed down."""
    path.mkdir(parents=True, exist_ok=True)
    stat = path.stat()
    if stat.st_mode & 0o777 != mode and stat.st_uid == os.geteuid():
        path.chmod(mode)
    return path


def write_private(path: Path, data: str | bytes) -> None:
    """Write a file that is ``0600`` from its creation on (and made so if it existed)."""
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(fd, PRIVATE_FILE)
        handle.write(raw)


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Everything created inside is owner-only (the process's umask is restored after)."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)
