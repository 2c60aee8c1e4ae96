"""OpenTelemetry traces, metrics and logs, exported over OTLP/gRPC to the platform's collector.

The providers belong to the app (not process globals) so that several apps can live in one test process
and each can be shut down — flushing what it buffered — when its server stops. ``run()`` additionally
installs them as the process globals, so libraries that look the global providers up use them too.
Without ``otlp_endpoint`` nothing is exported, but spans are still created: their IDs still go into the
JSON logs and the ``traceparent`` of incoming requests is still honoured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider | None
    log_handler: logging.Handler | None

    @property
    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer("soma_service")

    @property
    def meter(self) -> metrics.Meter:
        return self.meter_provider.get_meter("soma_service")

    def install_globals(self) -> None:
        """Make these the process-wide providers (once per process; the SDK refuses a second time)."""
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(self.meter_provider)

    def shutdown(self) -> None:
        """Flush and stop the exporters; called after the server has drained."""
        if self.log_handler is not None:
            logging.getLogger().removeHandler(self.log_handler)
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            if provider is not None:
                try:
                    provider.shutdown()
                except Exception:  # noqa: BLE001 - a dead collector must not block shutdown
                    log.warning("telemetry provider did not shut down cleanly", exc_info=True)


def configure_telemetry(settings: ServiceSettings) -> Telemetry:
    resource = Resource.create({"service.name": settings.service_name, "service.version": settings.service_version})
    tracer_provider = TracerProvider(resource=resource)
    readers = []
    logger_provider = None
    handler = None
    endpoint = settings.otlp_endpoint
    if endpoint:
        insecure = endpoint.startswith("http://")
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=insecure)))
        readers.append(PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=endpoint, insecure=insecure),
            export_interval_millis=settings.otlp_export_interval_ms,
        ))
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=insecure)))
        handler = LoggingHandler(level=logging.getLevelName(settings.log_level), logger_provider=logger_provider)
        logging.getLogger().addHandler(handler)
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    return Telemetry(tracer_provider, meter_provider, logger_provider, handler)
