"""Delivery through the audit sink, counted per source and outcome, and the sink's health for /readyz.

Every source (``opa``: decision-log batches; ``kubernetes``: Events) acknowledges what it read only after
:meth:`Shipper.deliver` returned, so an event the sink did not take is read again (at least once; event ids
are deterministic, so a second delivery is the same event and readers deduplicate it).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from soma_service.audit import AuditSink

LOG = logging.getLogger("soma_audit_shipper")
OUTCOMES = ("delivered", "skipped", "failed")


class Shipper:
    """The one way events leave the shipper: ``await deliver(event, source)``; records not mapped to an event
    are ``skipped(source)``. Metric ``audit_shipper.events`` counts each, with attributes ``source`` and
    ``outcome`` (delivered | skipped | failed). ``sink`` may be set after construction (the service makes its
    sink inside the running event loop, at start-up)."""

    def __init__(self, sink: AuditSink | None, meter, *, unready_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.sink = sink
        self.unready_seconds = unready_seconds
        self.clock = clock
        self.failed_at: float | None = None
        self._counter = meter.create_counter(
            "audit_shipper.events", unit="{event}",
            description="records read by the audit shipper, by source and outcome (delivered, skipped, failed)")

    def _count(self, source: str, outcome: str, amount: int = 1) -> None:
        self._counter.add(amount, {"source": source, "outcome": outcome})

    def skipped(self, source: str, amount: int = 1) -> None:
        if amount:
            self._count(source, "skipped", amount)

    async def deliver(self, event: dict, source: str) -> None:
        """Deliver one event; raises what the sink raised (after counting it and marking the sink unready)."""
        try:
            await self.sink.deliver(event)
        except Exception as error:
            self._count(source, "failed")
            self.failed_at = self.clock()
            LOG.warning("audit event %s from %s not delivered: %s: %s", event.get("event_id"), source,
                        type(error).__name__, error)
            raise
        self._count(source, "delivered")
        self.failed_at = None

    def sink_ready(self) -> bool:
        """False for ``unready_seconds`` after a failed delivery unless one succeeded since."""
        return self.failed_at is None or self.clock() - self.failed_at >= self.unready_seconds
