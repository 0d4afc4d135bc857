"""The read-only status page served at `/`: plain HTML rendered on the server.

No scripts and nothing fetched from elsewhere: it must work on an air-gapped cluster and can
never act. It refreshes itself every few seconds with a meta tag. Everything shown comes from
the process's `/status` dictionary, which never holds secrets.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.4em 0}td,th{padding:.25em .7em;text-align:left;
border-bottom:1px solid #ddd}th{background:#f4f4f4}
.bar{width:12em;height:.9em;background:#e6e6e6;display:inline-block;vertical-align:middle}
.fill{height:100%;background:#3a7bd5}.warn{color:#b00}.muted{color:#777}
"""


def _cell(value: object) -> str:
    if value is None or value == "" or value == []:
        return '<td class="muted">-</td>'
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return f"<td>{escape(str(value))}</td>"


def _table(headers: list[str], rows: list[list[object]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _usage_bar(allocated: str, capacity: str) -> str:
    used, total = int(allocated), int(capacity)
    percent = 0.0 if total == 0 else min(100.0, 100.0 * used / total)
    shown = f"{percent:.1f}%" if percent >= 0.1 or used == 0 else "<0.1%"
    return (
        f'<span class="bar" title="{used} of {total}"><span class="fill" '
        f'style="width:{percent:.2f}%;display:block"></span></span> {shown}'
    )


def render_status_page(status: dict[str, Any], *, refresh_seconds: int = 5) -> str:
    parts: list[str] = []
    role = "leader" if status.get("is_leader") else "standby"
    parts.append(
        f"<h1>vipam</h1><p>leader: <b>{escape(str(status.get('leader') or 'none'))}</b> "
        f"&middot; this replica: {escape(str(status.get('identity', '')))} ({role})</p>"
    )
    parts.append("<h2>Pools</h2>")
    pool_rows: list[str] = []
    for name, pool in sorted((status.get("pools") or {}).items()):
        problems = [*pool.get("errors", []), *pool.get("overlaps", [])]
        usage = pool.get("usage") or {}
        if not usage:
            pool_rows.append(
                f"<tr><td>{escape(name)}</td><td class='muted'>-</td><td class='muted'>-</td>"
                f"<td class='muted'>-</td><td class='warn'>{escape('; '.join(problems))}</td></tr>"
            )
        for family, figures in sorted(usage.items()):
            pool_rows.append(
                f"<tr><td>{escape(name)}</td><td>{escape(family)}</td>"
                f"<td>{_usage_bar(figures['allocated'], figures['capacity'])}</td>"
                f"<td>{escape(figures['allocated'])} / {escape(figures['capacity'])} "
                f"({escape(figures['available'])} free)</td>"
                f"<td class='warn'>{escape('; '.join(problems))}</td></tr>"
            )
    if pool_rows:
        parts.append(
            "<table id='pools'><tr><th>pool</th><th>family</th><th>usage</th><th>allocated</th>"
            f"<th>problems</th></tr>{''.join(pool_rows)}</table>"
        )
    else:
        parts.append('<p class="muted">no pools</p>')
    services = status.get("services") or []
    total = status.get("services_total", len(services))
    parts.append(f"<h2>Services ({len(services)} of {total} shown)</h2>")
    parts.append(_table(
        ["service", "addresses", "pool", "announcing node", "state"],
        [[s["service"], s["addresses"], s["pool"], s["node"], s["state"]] for s in services],
        "no LoadBalancer Services",
    ).replace("<table>", "<table id='services'>", 1))
    parts.append("<h2>Speakers</h2>")
    parts.append(_table(
        ["node", "live holder", "last renewal"],
        [[s["node"], s["holder"], s["renewTime"]] for s in status.get("speakers") or []],
        "no speaker has registered",
    ))
    parts.append("<h2>Failures by reason</h2>")
    parts.append(_table(
        ["reason", "count"],
        [[reason, count] for reason, count in (status.get("failures_by_reason") or {}).items()],
        "no allocation failures",
    ))
    recent = status.get("recent_failures") or []
    if recent:
        parts.append(_table(
            ["when (UTC)", "service", "reason", "message"],
            [[datetime.fromtimestamp(f["at"], UTC).strftime("%H:%M:%S"), f["service"],
              f["reason"], f["message"]] for f in reversed(recent)],
            "",
        ))
    external = status.get("external_ipam") or {}
    if external:
        parts.append("<h2>External IPAM</h2>")
        parts.append(_table(
            ["pool", "healthy", "error", "orphans pending release"],
            [[name, state.get("healthy"), state.get("error"), state.get("orphans_pending")]
             for name, state in sorted(external.items())],
            "",
        ))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{refresh_seconds}'>"
        f"<title>vipam status</title><style>{STYLE}</style></head><body>"
        + "".join(parts) + "</body></html>"
    )
