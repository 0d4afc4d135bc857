"""Operators' view of a running process: Prometheus metrics and the health/status HTTP server."""
