"""TLS to the platform's own endpoints (Kafka, the Kubernetes API): trust set once, from the CA file a setting
names, never the system store."""
from __future__ import annotations

import ssl
from pathlib import Path


def trust_only(ca_file: Path) -> ssl.SSLContext:
    """A client context that trusts only the PEM CA certificates in ``ca_file`` and checks the server's name (and
    certificate); raises ``OSError`` (``ssl.SSLError`` is one) when the file is unreadable or holds no certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
