"""The fingerprint of an ASCII-armored OpenPGP public key, computed here (RFC 4880 §12.2), so that a stack
file whose ``fingerprint`` does not belong to its ``publicKey`` is refused before anything is deployed:
Argo CD would otherwise load one key and the AppProjects would name another, and no commit would ever verify.

Only v4 keys (40-hex-digit fingerprints, what GnuPG 2.2 in Argo CD's image makes and checks)."""
from __future__ import annotations

import base64
import binascii
import hashlib

PUBLIC_KEY_TAG = 6


class OpenPgpError(ValueError):
    pass


def dearmor(armored: str) -> bytes:
    """The binary packets of an armored block (headers, the blank line and the CRC line left out)."""
    lines = [line.strip() for line in armored.strip().splitlines()]
    if not lines or lines[0] != "-----BEGIN PGP PUBLIC KEY BLOCK-----" or lines[-1] != "-----END PGP PUBLIC KEY BLOCK-----":
        raise OpenPgpError("not an ASCII-armored PGP PUBLIC KEY BLOCK")
    body = lines[1:-1]
    if "" in body:
        body = body[body.index("") + 1:]
    data = "".join(line for line in body if not line.startswith("="))
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as err:
        raise OpenPgpError(f"the armored block is not base64: {err}") from err


def first_packet(data: bytes) -> tuple[int, bytes]:
    """(tag, body) of the first packet, old or new header format."""
    if not data or not data[0] & 0x80:
        raise OpenPgpError("no OpenPGP packet")
    header = data[0]
    if header & 0x40:  # new format
        tag, first = header & 0x3F, data[1]
        if first < 192:
            length, start = first, 2
        elif first < 224:
            length, start = ((first - 192) << 8) + data[2] + 192, 3
        elif first == 255:
            length, start = int.from_bytes(data[2:6], "big"), 6
        else:
            raise OpenPgpError("partial-length public key packet")
    else:
        tag, length_type = (header >> 2) & 0x0F, header & 0x03
        size = {0: 1, 1: 2, 2: 4}.get(length_type)
        if size is None:
            raise OpenPgpError("indeterminate-length public key packet")
        length, start = int.from_bytes(data[1:1 + size], "big"), 1 + size
    body = data[start:start + length]
    if len(body) != length:
        raise OpenPgpError("truncated packet")
    return tag, body


def fingerprint(armored: str) -> str:
    """The primary key's v4 fingerprint, 40 upper-case hex digits."""
    tag, body = first_packet(dearmor(armored))
    if tag != PUBLIC_KEY_TAG:
        raise OpenPgpError(f"the first packet is tag {tag}, not a public key (tag 6); a secret key is never accepted")
    if body[:1] != b"\x04":
        raise OpenPgpError(f"version {body[0] if body else '?'} key; only v4 keys (40-digit fingerprints) are supported")
    return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()
