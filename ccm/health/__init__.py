"""Operators' view of a running process: Prometheus metrics and the health/status HTTP server."""

from prometheus_client import disable_created_metrics

# Counters and histograms would each carry a `<name>_created` series (the Unix time the series
# was made): noise on every scrape that no dashboard or alert of ours reads. Process-wide, and
# read at scrape time, so every registry of the process is covered.
disable_created_metrics()  # type: ignore[no-untyped-call]
