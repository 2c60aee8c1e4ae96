"""The current request's ID, visible to logs and error bodies anywhere in the request's task."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
# What we accept from a caller: enough for UUIDs, ULIDs and the edge's IDs, nothing that can forge a log line.
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

current_request_id: ContextVar[str | None] = ContextVar("soma_request_id", default=None)


def accept_or_generate(offered: str | None) -> str:
    """The caller's ``X-Request-Id`` when it is a safe token, else a new random one (never an error)."""
    if offered and _ACCEPTED.match(offered):
        return offered
    return uuid.uuid4().hex
