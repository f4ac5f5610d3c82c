"""The shell every page shares: one inline stylesheet, no script, no link, nothing fetched.

Every value that reaches a page goes through :func:`escape` (names and titles are user content); numbers are
formatted by the page. A page reads the same offline, attached to an e-mail or opened straight from the bucket.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

STYLE = """
body{margin:0;background:#f9fafb;color:#111827;font:14px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
main{max-width:760px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}h3{font-size:14px}
section>h2:first-child{margin-top:0}
.meta{color:#4b5563;margin:0 0 16px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px;margin:16px 0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #f3f4f6}
td{overflow-wrap:break-word}td.num{white-space:nowrap}td.name{overflow-wrap:anywhere}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.up{color:#047857}.down{color:#b91c1c}.flat{color:#6b7280}
.alerts{border-color:#fca5a5;background:#fef2f2}
.chart-figure{margin:16px 0}.chart-title{font-weight:600;margin:0 0 4px}.no-data{color:#4b5563;margin:0}
.chart{display:block;max-width:100%;height:auto}
.scroll{overflow-x:auto}
code{font-size:12px;word-break:break-all}
a{color:#1d4ed8}
.sev-critical{color:#b91c1c;font-weight:600}.sev-warning{color:#b45309;font-weight:600}.sev-info{color:#374151}
@media (max-width:520px){main{padding:12px}section{padding:10px}th,td{padding:4px}}
@media (max-width:520px){th{font-size:12px}.wide-only{display:none}}
footer{color:#6b7280;font-size:12px;margin-top:24px}
"""


def escape(text: str) -> str:
    """HTML-escape ``text`` (quotes included, so it is safe in attributes too)."""
    return html.escape(text, quote=True)


def page(title: str, body: Iterable[str]) -> str:
    """A whole page: ``title`` (escaped here) and ``body`` (markup already escaped by the caller)."""
    head = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
    )
    return head + "".join(body) + "</main></body></html>"
