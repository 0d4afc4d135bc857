"""Event recording, counted apart from the sync's own writes.

Events leave on the recorder's own queue (ccm.kube.events), so the figures that matter for them
are not request latencies but how many were written, folded into a queued one, dropped because
the queue was full, or refused. Read at scrape time from the recorder's counters: recording
an Event pays nothing for metrics.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ccm.kube.events import EventRecorder


class EventCounts(Collector):
    def __init__(self, recorder: EventRecorder) -> None:
        self.recorder = recorder

    def collect(self) -> Iterator[Metric]:
        r = self.recorder
        events = CounterMetricFamily(
            "vipam_events", "Kubernetes Events by outcome (written off the sync path)",
            labels=["result"],
        )
        for result, value in (("written", r.recorded), ("aggregated", r.aggregated),
                              ("dropped", r.dropped), ("failed", r.failed)):
            events.add_metric([result], value)
        yield events
        yield GaugeMetricFamily("vipam_events_queued", "Events waiting to be written",
                                value=r.pending)
