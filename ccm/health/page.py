"""The read-only status page served at `/`: plain HTML rendered on the server.

No scripts and nothing fetched from elsewhere: it must work on an air-gapped cluster and can
never act. It refreshes itself every few seconds with a meta tag. Everything shown comes from
the process's `/status` dictionary, which never holds secrets.

Layout rules, checked in headless Chromium at desktop and phone widths
(tests/integration/playground/test_status_page.py): names (pools, Services, nodes) never break
inside, not even at a hyphen; a usage bar and its percentage stay on one line; on a narrow
screen every table row becomes a card of labelled lines, and anything still too wide scrolls
inside its own box, never the page; a failed Service shows the reason and the message.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from ccm.health.numbers import percent, readable_count

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1em;color:#222}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;margin-top:1.4em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.4em 0}td,th{padding:.25em .7em;text-align:left;
border-bottom:1px solid #ddd;vertical-align:top}th{background:#f4f4f4;white-space:nowrap}
.name{white-space:nowrap}
.usage{display:inline-flex;align-items:center;gap:.5em;white-space:nowrap}
.bar{flex:none;width:8em;height:.9em;background:#e6e6e6}
.fill{height:100%;background:#3a7bd5}.warn{color:#b00}.muted{color:#777}
.why{display:block;color:#555;font-size:.9em;min-width:14em}
.ok{color:#1a7f37}
@media (max-width:640px){
.scroll table,.scroll tbody,.scroll tr,.scroll td{display:block}
.scroll tr.head{display:none}
.scroll tr{border-bottom:1px solid #ddd;padding:.35em 0}
.scroll td{border:0;padding:.05em .2em}
.scroll td:first-child{font-weight:600}
.scroll td+td::before{content:attr(data-label) ": ";color:#777;font-weight:normal}
.why{min-width:0}
}
"""

Cell = tuple[str, str]
"""(inner HTML, CSS class) of one table cell."""


def _cell(value: object, css: str = "") -> Cell:
    if value is None or value == "" or value == []:
        return "-", "muted"
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return escape(str(value)), css


def _table(table_id: str, headers: list[str], rows: list[list[Cell]], empty: str) -> str:
    """A table that scrolls in its own box; on a phone each row becomes a labelled card."""
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td data-label="{escape(label)}"{f" class={css!r}" if css else ""}>{inner}</td>'
            for label, (inner, css) in zip(headers, row, strict=True)
        ) + "</tr>"
        for row in rows
    )
    return (f"<div class='scroll'><table id='{table_id}'><tr class='head'>{head}</tr>{body}"
            "</table></div>")


def _usage_bar(figures: dict[str, str]) -> Cell:
    used, total = int(figures["allocated"]), int(figures["capacity"])
    width = 0.0 if total == 0 else min(100.0, 100.0 * used / total)
    shown = figures.get("allocatedPercent") or percent(used, total)
    return (
        f'<span class="usage" title="{used} of {total}"><span class="bar">'
        f'<span class="fill" style="width:{width:.2f}%;display:block"></span></span>'
        f'<span class="pct">{escape(shown)}</span></span>', ""
    )


def _figures(figures: dict[str, str]) -> Cell:
    capacity = figures.get("capacityReadable") or readable_count(int(figures["capacity"]))
    free = readable_count(int(figures["available"]))
    exact = f"{figures['allocated']} of {figures['capacity']}, {figures['available']} free"
    return (f'<span title="{escape(exact)}">{escape(figures["allocated"])} / '
            f"{escape(capacity)} ({escape(free)} free)</span>", "name")


def _when(value: object) -> str:
    """An RFC 3339 time from /status, to the second; anything else as it is."""
    text = str(value or "")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _api_line(api: dict[str, Any] | None) -> str:
    if not api:
        return ""
    if api.get("reachable"):
        return (f"<p>API server: <b class='ok'>reachable</b> "
                f"<span class='muted'>(last answer {escape(_when(api.get('last_contact')))})"
                "</span></p>")
    last = api.get("last_contact")
    since = f", last answer {_when(last)}" if last else ""
    failure = f"; {api['last_failure']}" if api.get("last_failure") else ""
    return (f"<p class='warn'>API server: <b>unreachable</b> for "
            f"{float(api.get('seconds_since_contact') or 0):.0f}s{escape(since + failure)}</p>")


def _state(service: dict[str, Any]) -> Cell:
    state = str(service.get("state") or "pending")
    message = service.get("message")
    if state == "allocated":
        return escape(state), "name"
    why = f"<span class='why'>{escape(str(message))}</span>" if message else ""
    return f"<span class='warn name'>{escape(state)}</span>{why}", ""


def render_status_page(status: dict[str, Any], *, refresh_seconds: int = 5) -> str:
    parts: list[str] = []
    role = "leader" if status.get("is_leader") else "standby"
    parts.append(
        f"<h1>vipam</h1><p>leader: <b class='name'>{escape(str(status.get('leader') or 'none'))}"
        f"</b> &middot; this replica: <span class='name'>{escape(str(status.get('identity', '')))}"
        f"</span> ({role})</p>"
    )
    parts.append(_api_line(status.get("api")))
    parts.append("<h2>Pools</h2>")
    pool_rows: list[list[Cell]] = []
    for name, pool in sorted((status.get("pools") or {}).items()):
        problems = "; ".join([*pool.get("errors", []), *pool.get("overlaps", [])])
        usage = pool.get("usage") or {}
        if not usage:
            pool_rows.append([_cell(name, "name"), _cell(None), _cell(None), _cell(None),
                              _cell(problems, "warn")])
        for family, figures in sorted(usage.items()):
            pool_rows.append([_cell(name, "name"), _cell(family, "name"), _usage_bar(figures),
                              _figures(figures), _cell(problems, "warn")])
    parts.append(_table("pools", ["pool", "family", "usage", "allocated", "problems"],
                        pool_rows, "no pools"))
    services = status.get("services") or []
    total = status.get("services_total", len(services))
    parts.append(f"<h2>Services ({len(services)} of {total} shown)</h2>")
    parts.append(_table(
        "services", ["service", "addresses", "pool", "announcing node", "state"],
        [[_cell(s["service"], "name"), _cell(s["addresses"]), _cell(s["pool"], "name"),
          _cell(s["node"], "name"), _state(s)] for s in services],
        "no LoadBalancer Services",
    ))
    parts.append("<h2>Speakers</h2>")
    parts.append(_table(
        "speakers", ["node", "live holder", "last renewal (UTC)"],
        [[_cell(s["node"], "name"), _cell(s["holder"], "name"),
          _cell(_when(s["renewTime"]) if s.get("renewTime") else None, "name")]
         for s in status.get("speakers") or []],
        "no speaker has registered",
    ))
    parts.append("<h2>Failures by reason</h2>")
    parts.append(_table(
        "failure-counts", ["reason", "count"],
        [[_cell(reason, "name"), _cell(count)]
         for reason, count in (status.get("failures_by_reason") or {}).items()],
        "no allocation failures",
    ))
    recent = status.get("recent_failures") or []
    if recent:
        parts.append(_table(
            "failures", ["when (UTC)", "service", "reason", "message"],
            [[_cell(_when(f["at"]), "name"), _cell(f["service"], "name"),
              _cell(f["reason"], "name"), _cell(f["message"])] for f in reversed(recent)],
            "",
        ))
    external = status.get("external_ipam") or {}
    if external:
        parts.append("<h2>External IPAM</h2>")
        parts.append(_table(
            "external", ["pool", "healthy", "error", "orphans pending release"],
            [[_cell(name, "name"), _cell(state.get("healthy")), _cell(state.get("error")),
              _cell(state.get("orphans_pending"))] for name, state in sorted(external.items())],
            "",
        ))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta http-equiv='refresh' content='{refresh_seconds}'>"
        f"<title>vipam status</title><style>{STYLE}</style></head><body>"
        + "".join(parts) + "</body></html>"
    )
