"""Running and finding the stack's processes: commands, ports, pid files, logs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from c360_assets.tools.stack.config import StackError

Echo = Callable[[str], None]


def echo_stdout(message: str) -> None:
    print(message, flush=True)


def run(cmd: list[str], *, what: str, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()
        raise StackError(f"{what} failed (exit {proc.returncode}): {output[-2000:]}")
    return proc


def is_root() -> bool:
    return os.geteuid() == 0


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def require_free_port(port: int, service: str, variable: str) -> None:
    if port_in_use(port):
        raise StackError(
            f"port {port} on 127.0.0.1 is taken by another process, so {service} cannot start; "
            f"stop that process or choose another port with {variable}"
        )


def process_with_arg(pid: int | None, needle: str) -> int | None:
    """`pid` if it is alive and its command line mentions `needle` (guards against reuse)."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        for _ in range(50):
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            cmdline = proc.cmdline()
            if cmdline:
                break
            # an empty command line: the process is in the middle of an exec (a detached start
            # going from the shell to setsid to the server), not gone; look again
            time.sleep(0.01)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return pid if any(needle in arg for arg in cmdline) else None


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"


def rotate_logs(*logs: Path) -> None:
    """Keep the previous start's log as `.1`, so a failure shows this start's log only."""
    for log in logs:
        if log.exists():
            log.replace(log.with_name(log.name + ".1"))


def terminate(pid: int, name: str, echo: Echo, timeout_s: float = 60) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``."""
    proc = psutil.Process(pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except psutil.TimeoutExpired:
        echo(f"{name} did not stop within {timeout_s:.0f} s: killing pid {pid}")
        proc.kill()
        with contextlib.suppress(psutil.TimeoutExpired):
            proc.wait(10)
    echo(f"{name} stopped (was pid {pid})")
