"""Whether another OS user can read a file: what "owner-only" must mean, checked for real."""

import os
import subprocess
from pathlib import Path


def readable_by_another_user(path: Path) -> bool:
    """Whether an OS user other than this one (and not root) can read ``path``: as root, a real
    read as `nobody`; otherwise from the modes of the path and its folders."""
    if os.geteuid() == 0:
        read = ["runuser", "-u", "nobody", "--", "head", "-c", "1", str(path)]
        return subprocess.run(read, capture_output=True, check=False).returncode == 0
    for folder in path.parents:
        if not folder.stat().st_mode & 0o001:  # others cannot traverse it
            return False
    return bool(path.stat().st_mode & 0o004)
