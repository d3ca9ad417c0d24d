"""The listening TCP sockets of processes, read from /proc (no `ss` needed): each
process's socket descriptors looked up in its network namespace's tcp and tcp6 tables."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from pathlib import Path

LISTEN = "0A"  # the state column of /proc/net/tcp
WILDCARD = ("0.0.0.0", "::")


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1, also as an IPv4-mapped IPv6 address (::ffff:127.0.0.1)."""
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def _address(hex_address: str) -> str:
    """/proc/net/tcp's address: 32-bit words in the machine's (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words)


def _listen_table(pid: int) -> dict[str, tuple[str, int]]:
    """Socket inode -> (address, port) of every listening socket of `pid`'s namespace."""
    table = {}
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == LISTEN:
                    address, port = fields[1].split(":")
                    table[fields[9]] = (_address(address), int(port, 16))
    return table


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:["):-1])
    return inodes


def listening(pids: set[int]) -> dict[int, set[tuple[str, int]]]:
    """Each live process's listening TCP sockets, (address, port); none: left out."""
    found = {}
    for pid in pids:
        table = _listen_table(pid)
        mine = {table[inode] for inode in _socket_inodes(pid) if inode in table}
        if mine:
            found[pid] = mine
    return found


def namespace(pid: int) -> int:
    """The inode of `pid`'s network namespace (the same for every process in it)."""
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def interfaces(pid: int) -> set[str]:
    """The network interfaces of `pid`'s namespace."""
    lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    return {line.split(":", 1)[0].strip() for line in lines}


def command(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    return []


def not_loopback_only(pids: set[int], netns_pid: int) -> list[str]:
    """What of `pids` listens where more than this machine's loopback could reach it:
    a socket on an address that is not loopback, unless bound to every interface
    of a namespace (the cluster's, `netns_pid`'s) whose only interface is loopback."""
    assert interfaces(netns_pid) == {"lo"}, interfaces(netns_pid)
    wrong = []
    for pid, sockets in listening(pids).items():
        for address, port in sorted(sockets):
            if is_loopback(address):
                continue
            if address in WILDCARD and namespace(pid) == namespace(netns_pid):
                continue
            wrong.append(f"{' '.join(command(pid))[:120]} (pid {pid}) on {address}:{port}")
    return wrong
