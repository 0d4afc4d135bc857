"""Both log formats carry the Service key and the reason of a decision."""

from __future__ import annotations

import json
import logging

from ccm.logs import JsonFormatter, TextFormatter


def _record() -> logging.LogRecord:
    record = logging.LogRecord("ccm.controller.sync", logging.INFO, __file__, 1,
                               "allocated %s", ("192.0.2.53 from pool ipv4-default",), None)
    record.service = "shop/web"
    record.reason = "IPAllocated"
    return record


def test_text_format_names_the_service_and_reason() -> None:
    line = TextFormatter().format(_record())
    assert "allocated 192.0.2.53 from pool ipv4-default" in line
    assert line.endswith("service=shop/web reason=IPAllocated")


def test_json_format_names_the_service_and_reason() -> None:
    entry = json.loads(JsonFormatter().format(_record()))
    assert (entry["service"], entry["reason"]) == ("shop/web", "IPAllocated")
