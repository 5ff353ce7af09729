"""The supervisor's figures: who waits in which queue and how long, served hand-offs, work orders, ratings."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.handoff import QUEUES
from webapp.ratings import RATINGS
from webapp.store import Handoff, Rating, Store, WorkOrder, now


def desk_stats(s: Session) -> dict[str, Any]:
    """The figures at this moment, in one transaction."""
    t = now()
    queued = s.scalars(select(Handoff).where(Handoff.status == "queued")).all()
    per_queue = {q: {"waiting": 0, "longest_wait_seconds": 0} for q in QUEUES}
    for h in queued:
        d = per_queue.setdefault(h.queue, {"waiting": 0, "longest_wait_seconds": 0})
        d["waiting"] += 1
        d["longest_wait_seconds"] = max(d["longest_wait_seconds"], int((t - h.created_at).total_seconds()))
    ratings = s.scalars(select(Rating)).all()
    return {"queues": per_queue,
            "claimed": Store.count(s, Handoff, Handoff.status == "claimed"),
            "open_workorders": Store.count(s, WorkOrder, WorkOrder.status != "closed"),
            "overdue_workorders": Store.count(s, WorkOrder, WorkOrder.status != "closed", WorkOrder.deadline < t),
            "ratings": {r: sum(1 for x in ratings if x.score == r) for r in RATINGS}}
