"""Loopback ports for servers that must be told their port before they start.

A server of ours binds port 0 and reports the port the kernel gave it (moto, `LoopbackProxy`,
`TestUpstream`). PostgreSQL, nginx and the host agent's own programs take their port from a
command line or a config file written before they start, so the port is chosen first and bound
later. The usual "bind port 0, read it, close" probe races there: until the server binds, the port
is free for anyone, and under `pytest -n 2` the other worker's next probe or a client's outgoing
connection may get it first.

`free_port()` closes the race for every process on this machine that uses it:

- it hands out ports below the kernel's ephemeral range (`ip_local_port_range`), which a port-0
  bind and an outgoing connection never get;
- each process owns one block of those ports for as long as it lives, by holding an exclusive
  lock on the block's file in a shared directory: two processes (two xdist workers, two test
  sessions, a benchmark) never draw from the same block;
- within its block a process hands the ports out in turn, skipping any that is bound right now,
  so a port comes back only after every other port of the block was handed out.

Nothing here imports pytest: the benchmarks use it too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
import threading
from pathlib import Path

# Ports 1024-10239 are left alone: the well-known services' neighbourhood (5432, 8080, ...).
LOWEST_PORT = 10240
BLOCK_SIZE = 256
LOCK_DIR = Path(tempfile.gettempdir()) / "leanstack-port-blocks"


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


class _Block:
    """The block of ports this process owns, and the next one to hand out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owned: tuple[int, int] | None = None
        self._next = 0

    def _claim(self) -> tuple[int, int]:
        """(the descriptor holding the block's lock, the block's first port)."""
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        # Shared by every account on the machine, like /tmp (a lock file is opened read-only: flock needs no more).
        with contextlib.suppress(PermissionError):
            LOCK_DIR.chmod(0o1777)
        blocks = (_ephemeral_start() - LOWEST_PORT) // BLOCK_SIZE
        # Start at a block that depends on the process id, so concurrent processes seldom try the same one first.
        for offset in range(blocks):
            number = (os.getpid() + offset) % blocks
            descriptor = os.open(LOCK_DIR / f"block-{number}", os.O_RDONLY | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            return descriptor, LOWEST_PORT + number * BLOCK_SIZE  # held until the process ends
        raise RuntimeError(f"every block of loopback ports under {LOCK_DIR} is held by another process")

    def port(self) -> int:
        with self._lock:
            if self._owned is None:
                self._owned = self._claim()
            first = self._owned[1]
            for _ in range(BLOCK_SIZE):
                candidate = first + self._next
                self._next = (self._next + 1) % BLOCK_SIZE
                if _bindable(candidate):
                    return candidate
        raise RuntimeError(f"every port of {first}-{first + BLOCK_SIZE - 1} is bound")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


_BLOCK = _Block()


def _forget_block_in_child() -> None:
    # A forked child inherits the lock's descriptor but must claim a block of its own.
    global _BLOCK
    _BLOCK = _Block()


os.register_at_fork(after_in_child=_forget_block_in_child)


def free_port() -> int:
    """A loopback port nobody is bound to and no other process using this module will hand out."""
    return _BLOCK.port()
