"""The Xauthority file: our cookie first, the user's own entries after it."""

from __future__ import annotations

import struct

from ana_headless.xauth import auth_file


def test_auth_file_is_our_wildcard_mit_cookie_then_the_inherited() -> None:
    data = auth_file(b"C" * 16, "7", inherited=b"USER")
    assert data.endswith(b"USER")
    data = data[:-4]
    (family,) = struct.unpack(">H", data[:2])
    fields, offset = [], 2
    while offset < len(data):
        (length,) = struct.unpack(">H", data[offset : offset + 2])
        fields.append(data[offset + 2 : offset + 2 + length])
        offset += 2 + length
    assert family == 0xFFFF
    assert fields == [b"", b"7", b"MIT-MAGIC-COOKIE-1", b"C" * 16]
