"""The Vault policies identity and its key-rotation job need on the transit key — and nothing more.

identity itself may read the key's public versions and sign; it may not rotate, reconfigure, trim, export or
back up the key. Rotation and retirement run as a separate job (``python -m soma_identity keys ...``) with the
rotation policy. Neither policy can read private key material: the key is created non-exportable.
"""

from __future__ import annotations


def signer_policy(key: str, mount: str = "transit") -> str:
    return (f'path "{mount}/sign/{key}" {{ capabilities = ["update"] }}\n'
            f'path "{mount}/sign/{key}/*" {{ capabilities = ["update"] }}\n'
            f'path "{mount}/keys/{key}" {{ capabilities = ["read"] }}\n')


def rotation_policy(key: str, mount: str = "transit") -> str:
    return (f'path "{mount}/keys/{key}" {{ capabilities = ["read", "create", "update"] }}\n'
            f'path "{mount}/keys/{key}/rotate" {{ capabilities = ["update"] }}\n'
            f'path "{mount}/keys/{key}/config" {{ capabilities = ["update"] }}\n'
            f'path "{mount}/keys/{key}/trim" {{ capabilities = ["update"] }}\n')
