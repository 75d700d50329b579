"""The listening TCP sockets of a process tree, read from ``/proc`` (Linux).

What ``ss -ltnp`` shows, without the tool: the kernel's socket tables
(``/proc/net/tcp`` and ``tcp6``) give each listening socket's address and inode, and the
links in ``/proc/<pid>/fd`` say which process holds which inode.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import attrs

__all__ = ["Listener", "descendants", "is_loopback", "listening_sockets"]

#: The state column of a socket in the LISTEN state.
_LISTEN = "0A"


@attrs.frozen
class Listener:
    """A listening socket: who holds it and where it is bound."""

    pid: int
    address: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port} (pid {self.pid})"


def is_loopback(address: str) -> bool:
    """Whether ``address`` is reachable from this machine only."""
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed.is_loopback


def descendants(pid: int) -> list[int]:
    """``pid`` and every living process below it (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def listening_sockets(pids: list[int]) -> list[Listener]:
    """The listening TCP sockets (IPv4 and IPv6) held by the processes ``pids``."""
    bound = _listening_inodes()
    found = []
    for pid in pids:
        for inode in _socket_inodes(pid):
            if inode in bound:
                address, port = bound[inode]
                found.append(Listener(pid, address, port))
    return sorted(found, key=lambda listener: (listener.pid, listener.port))


def _listening_inodes() -> dict[int, tuple[str, int]]:
    bound: dict[int, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6 on this machine
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != _LISTEN:
                continue
            address, port = fields[1].split(":")
            bound[int(fields[9])] = (_decode(address), int(port, 16))
    return bound


def _decode(hex_address: str) -> str:
    # The kernel prints each 32-bit word of the address in host byte order.
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def _socket_inodes(pid: int) -> list[int]:
    inodes = []
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # gone, or not ours
        return []
    for descriptor in descriptors:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.append(int(target[len("socket:[") : -1]))
    return inodes
