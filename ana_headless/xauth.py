"""The Xauthority file format (Xau's), and the user's own entries that a child keeps."""

from __future__ import annotations

import os
import stat

from .environment import home_directory

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# An Xauthority file holds a few entries of some 50 bytes: a larger file is not one.
_MAX_XAUTHORITY = 1 << 20


def auth_file(cookie: bytes, number: str = "", inherited: bytes = b"") -> bytes:
    """An Xauthority file's contents: our MIT-MAGIC-COOKIE-1, then any `inherited` entries.

    The format (Xau's): big-endian u16 family, then four u16-length-prefixed fields: address,
    display number, auth name, auth data. Family 0xffff (FamilyWild) matches any host; an
    empty number matches any display, which is what the server's file needs when the server
    picks its number itself. The child's file names the number, so that the user's own entries
    that follow (for a 3D X server VirtualGL may use) still match their displays.
    """

    def field(data: bytes) -> bytes:
        return len(data).to_bytes(2, "big") + data

    entry = (
        (0xFFFF).to_bytes(2, "big")
        + field(b"")
        + field(number.encode())
        + field(b"MIT-MAGIC-COOKIE-1")
        + field(cookie)
    )
    return entry + inherited


def inherited_auth(env: Mapping[str, str]) -> bytes:
    """The user's own Xauthority entries, or nothing if there are none to read. Only a regular
    file of a sane size is read, without blocking: XAUTHORITY may name anything."""
    path = env.get("XAUTHORITY")
    if not path:
        home = home_directory(env)
        if home is None:
            return b""
        path = os.path.join(home, ".Xauthority")
    try:
        # Looked at before it is opened: opening a FIFO or a device can block or act.
        if not _readable_auth(os.stat(path)):
            return b""
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as auth:
        return auth.read(_MAX_XAUTHORITY) if _readable_auth(os.fstat(fd)) else b""


def _readable_auth(status: os.stat_result) -> bool:
    return stat.S_ISREG(status.st_mode) and status.st_size <= _MAX_XAUTHORITY
