"""OPA's decision logs over HTTP: ``POST /logs`` with a gzip-compressed JSON array, one element per decision.

What OPA does (openpolicyagent.org/docs/management-decision-logs, "Decision Log Service API"; OPA's
v1/plugins/logs ``uploadChunk``): it POSTs each chunk with ``Content-Encoding: gzip`` and ``Content-Type:
application/json`` to ``<service url>/logs`` (or ``decision_logs.resource``), and a chunk whose upload fails
(no answer, or any status outside 2xx) is put back in its buffer and sent again at the next upload. Older OPA
releases accept exactly 200, so the answer is 200.

So the shipper answers 200 only after every decision of the batch was delivered; a sink failure answers 503
and OPA keeps the batch. A body that cannot be a batch (not gzip, not JSON, not an array, over the size
limits) is 400 with the reason and nothing of it is delivered. An element that is not an OPA decision (no
``decision_id``) is skipped and counted.
"""
from __future__ import annotations

import json
import logging
import zlib
from typing import Any

from fastapi import APIRouter, Request

from soma_service import ServiceError

from .delivery import Shipper
from .mapping import from_opa_decision

LOG = logging.getLogger("soma_audit_shipper.opa")
SOURCE = "opa"


def bad(code: str, message: str) -> ServiceError:
    return ServiceError(400, code, message)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (400) as soon as it exceeds ``limit`` bytes, declared or read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise bad("body_too_large", f"the batch is {declared} bytes; the limit is {limit} (opa_max_body_bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise bad("body_too_large", f"the batch exceeds {limit} bytes (opa_max_body_bytes)")
    return bytes(body)


def decode_batch(body: bytes, max_decoded: int) -> list[Any]:
    """The JSON array inside a gzip body; raises 400 naming what is wrong. Decompression stops at
    ``max_decoded`` bytes, so a small body cannot expand without bound."""
    if body[:2] != b"\x1f\x8b":
        raise bad("not_gzip", "the body is not gzip-compressed (OPA sends Content-Encoding: gzip)")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(body, max_decoded + 1)
    except zlib.error as error:
        raise bad("not_gzip", f"the body is not valid gzip: {error}") from None
    if len(text) > max_decoded:
        raise bad("body_too_large", f"the batch exceeds {max_decoded} bytes decompressed (opa_max_decoded_bytes)")
    if not inflater.eof:
        raise bad("not_gzip", "the gzip stream is truncated")
    try:
        batch = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad("not_json", f"the batch is not JSON: {error}") from None
    if not isinstance(batch, list):
        raise bad("not_a_list", f"the batch is a JSON {type(batch).__name__}, not an array of decisions")
    return batch


def map_batch(batch: list[Any]) -> tuple[list[dict], int]:
    """The batch's audit events, and how many elements were not decisions (or could not be read as one)."""
    events, skipped = [], 0
    for entry in batch:
        event = None
        if isinstance(entry, dict):
            try:
                event = from_opa_decision(entry)
            except (TypeError, ValueError, AttributeError) as error:
                LOG.warning("decision %s skipped: %s", str(entry.get("decision_id"))[:64], error)
        if event is None:
            skipped += 1
        else:
            events.append(event)
    return events, skipped


def router(shipper: Shipper, *, max_body: int, max_decoded: int) -> APIRouter:
    api = APIRouter(tags=["opa"])

    @api.post("/logs", summary="OPA decision-log batches (gzip JSON array); 200 once every decision is delivered",
              responses={400: {"description": "not a batch"}, 503: {"description": "the sink did not take the batch: OPA retries it"}})
    async def logs(request: Request) -> dict[str, int]:
        batch = decode_batch(await read_body(request, max_body), max_decoded)
        events, skipped = map_batch(batch)
        for event in events:
            try:
                await shipper.deliver(event, SOURCE)
            except Exception as error:  # noqa: BLE001 - any sink failure: OPA keeps the batch and retries
                raise ServiceError(503, "sink_unavailable", f"the audit sink did not take event {event['event_id']}: "
                                   f"{type(error).__name__}; send the batch again") from None
        shipper.skipped(SOURCE, skipped)
        return {"delivered": len(events), "skipped": skipped}

    return api
