"""`hotwash insights`: the compounding, in numbers."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from hotwash.commands.common import JsonOpt, out, print_json, store
from hotwash.insights import compute
from hotwash.insights.charts import fmt


def _d(seconds: float | None) -> str:
    return "—" if seconds is None else fmt(seconds, "s")


def insights(json_: JsonOpt = False) -> None:
    """The compounding: incidents per category, time to detect/contain/resolve, recurrences, growth."""
    st = store()
    try:
        data = compute(st)
    finally:
        st.dispose()
    if json_:
        print_json(data)
        return
    inc, resp, pms, acts, reads = (data["incidents"], data["response"], data["postmortems"], data["actions"],
                                   data["reads"])
    out.print(f"incidents: {inc['total']} ({inc['open']} open) · recurrences within "
              f"{data['recurrences']['window_days']} days: {data['recurrences']['count']}")
    out.print(f"mean time to detect {_d(resp['mttd_s'])} · to contain {_d(resp['mttc_s'])} · "
              f"to resolve {_d(resp['mttr_s'])}")
    table = Table("category", "incidents")
    for category, n in inc["by_category"].items():
        table.add_row(category, str(n))
    out.print(table)
    if resp["monthly"]:
        months = Table("month", "detect (median)", "contain (median)", "resolve (median)", "incidents")
        for m in resp["monthly"]:
            months.add_row(m["month"], _d(m["detect"]["median_s"]), _d(m["contain"]["median_s"]),
                           _d(m["resolve"]["median_s"]), str(max(m[p]["n"] for p in ("detect", "contain", "resolve"))))
        out.print(months)
    out.print(f"regression cases: {data['growth']['eval_cases']} · stored monitors: {data['growth']['monitors']}")
    out.print(f"postmortems: {pms['total']} ({pms['on_time']} on time, {pms['late']} late, {pms['overdue']} overdue, "
              f"{pms['pending']} pending)")
    out.print(f"actions: {acts['open']} open, {acts['overdue']} overdue, {acts['done']} done, "
              f"{acts['deferred']} deferred")
    for a in acts["overdue_items"]:
        out.print(f"  overdue: #{a['id']} {escape(a['title'])} ({escape(a['owner'])}, {a['incident']}, "
                  f"{a['days_overdue']} days)", highlight=False)
    coverage = "—" if reads["coverage"] is None else f"{reads['coverage'] * 100:.0f}%"
    out.print(f"read coverage of {reads['published']} published postmortems: {coverage}")
