"""Web sessions from pageviews: a visitor's views with no gap above the inactivity timeout."""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from engagement.measure._engine import f64 as _f
from engagement.measure._engine import flag as _i

__all__ = ["sessions"]


def sessions(pageviews: ir.Table, *, timeout_minutes: float = 30.0, by: Sequence[str] = ()) -> ir.Table:
    """Sessionise pageviews: a visitor's views with no gap above ``timeout_minutes``.

    Returns one row per session: ``visitor_id, customer_id, session_start,
    pageviews, duration_s`` (first to last view) and ``converted``. The session
    belongs to the period of its first view. ``by``: more columns that part a visitor's views (each period's
    views of several measured together), kept in the output.

    Examples
    --------
    >>> import pandas as pd, ibis
    >>> from engagement.measure import sessions
    >>> pv = ibis.memtable(pd.DataFrame({
    ...     "visitor_id": ["v", "v", "v"], "customer_id": [None, None, None], "page": ["/", "/a", "/"],
    ...     "viewed_at": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:20", "2024-01-01 11:00"])}))
    >>> out = sessions(pv).order_by("session_start").to_pandas()
    >>> out["pageviews"].tolist(), out["duration_s"].tolist()
    ([2, 1], [1200.0, 0.0])
    """
    pv = pageviews
    if "customer_id" not in pv.columns:  # optional: without it every session is anonymous
        pv = pv.mutate(customer_id=ibis.null("string"))
    converted = pv.converted.fill_null(False) if "converted" in pv.columns else ibis.literal(False)
    secs = pv.viewed_at.epoch_seconds()
    by = list(by)
    w = ibis.window(group_by=[pv.visitor_id, *[pv[c] for c in by]], order_by=[pv.viewed_at])
    gap = secs - secs.lag().over(w)
    starts = pv.mutate(_conv=converted, _new=_i(gap.isnull() | (gap > timeout_minutes * 60)))
    # a session's number counts the starts up to each view and its peers (a RANGE frame): views at the same
    # instant are numbered alike whichever order the two windows put them in (a ROWS frame could split them
    # across a session boundary)
    w2 = ibis.window(group_by=[starts.visitor_id, *[starts[c] for c in by]], order_by=[starts.viewed_at],
                     range=(None, 0))
    numbered = starts.mutate(_sid=starts._new.sum().over(w2))
    # the duration is the last view's time less the first's: the same as the largest less the least of their
    # epoch seconds, without carrying those seconds through the two window sorts (sessions 2.4 s to 2.3 s at a
    # million customers)
    per = numbered.group_by(["visitor_id", "_sid", *by]).aggregate(
        customer_id=numbered.customer_id.max(),
        session_start=numbered.viewed_at.min(),
        pageviews=numbered.count(),
        _last=numbered.viewed_at.max(),
        converted=numbered._conv.max(),
    )
    duration = _f(per._last.epoch_seconds() - per.session_start.epoch_seconds())
    return per.select("visitor_id", *by, "customer_id", "session_start", "pageviews", duration_s=duration,
                      converted=per.converted)
