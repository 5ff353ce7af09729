"""Hot-issue early warning: a topic asked about far more than its baseline, one alert per surge.

Method (parameters in analytics/alerts.yml, reasoning in docs/analytics.md):
- Counts: sessions asking about each topic per local hour (turns of the analytics store).
- Baseline: each topic's share of all sessions over the 28 days that end 2 days before the hour checked
  (the guard band keeps a surge out of its own baseline), estimated separately for office hours of
  working days and for the other hours (calendar with public holidays and 调休). The expected count
  of a window is that share times all sessions in the window, so it follows Mondays, nights, holidays
  and seasons of the whole hotline by itself.
- Test: the probability of at least the observed count under a negative binomial with that mean and
  the topic's day-to-day over-dispersion (estimated from the baseline days; Poisson when there is none),
  for the last 1, 2 and 3 hours every hour and for the last 24 hours at the end of each day; a signal
  needs p below alpha, a minimum count and a minimum ratio to expected.
- Episodes: signals of a topic less than `cooldown_hours` apart are one surge, hence one alert, which
  records when it started (first hour of the window that fired), the count against expected, masked
  example questions and the entries answered. Alerts are kept in the store (replay-safe) and POSTed
  to ANALYTICS_ALERT_WEBHOOK when it is set.
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.calendar import is_office_hour
from analytics.settings import Settings, load_settings
from analytics.store import Alert, AnalyticsStore, KnowledgeAnswer, Turn

PARAMS_FILE = Path(__file__).resolve().parent / "alerts.yml"


@dataclass(frozen=True)
class DetectorParams:
    """The detector's tunables (analytics/alerts.yml)."""

    baseline_days: int = 28
    recent_days: int = 7
    guard_days: int = 2
    warmup_days: int = 7
    windows_hours: tuple[int, ...] = (1, 2, 3)
    alpha_hour: float = 1e-6
    min_count_hour: int = 6
    min_ratio_hour: float = 2.0
    alpha_day: float = 1e-6
    min_count_day: int = 15
    min_ratio_day: float = 1.6
    cooldown_hours: int = 24
    max_dispersion: float = 0.5
    examples: int = 5

    @classmethod
    def load(cls, path: Path = PARAMS_FILE) -> DetectorParams:
        """The parameters from YAML; unknown keys are refused with their name."""
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"{path}: unknown detector parameter(s) {', '.join(sorted(unknown))}")
        if "windows_hours" in raw:
            raw["windows_hours"] = tuple(raw["windows_hours"])
        return cls(**raw)


@dataclass
class Episode:
    """One detected surge of one topic (hour indexes into the scanned span)."""

    topic: str
    level: str  # hourly | daily
    start: int
    detected: int
    last_signal: int
    count: int
    expected: float
    p_value: float
    total_count: int = 0
    total_expected: float = 0.0
    closed: bool = False


def upper_tail(observed: int, mean: float, dispersion: float = 0.0) -> float:
    """P(X >= observed) for a negative binomial with this mean and variance mean + dispersion·mean² (Poisson at 0)."""
    if observed <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if dispersion <= 1e-9:
        log_term = observed * math.log(mean) - mean - math.lgamma(observed + 1)
        ratio = lambda k: mean / (k + 1)  # noqa: E731 - pmf(k+1)/pmf(k)
    else:
        r = 1.0 / dispersion
        p = r / (r + mean)
        log_term = (math.lgamma(observed + r) - math.lgamma(r) - math.lgamma(observed + 1)
                    + r * math.log(p) + observed * math.log1p(-p))
        ratio = lambda k: (k + r) / (k + 1) * (1 - p)  # noqa: E731
    term, total, k = math.exp(log_term), 0.0, observed
    for _ in range(100000):
        total += term
        nxt = term * ratio(k)
        k += 1
        if nxt < total * 1e-12 and nxt <= term:
            break
        term = nxt
    return min(1.0, total)


def detect(counts: np.ndarray, hours: list[dt.datetime], topics: list[str], params: DetectorParams | None = None) -> list[Episode]:
    """Run the detector over hourly counts [hour, topic] (local hours, consecutive); returns the episodes."""
    params = params or DetectorParams()
    counts = np.asarray(counts, dtype=np.int64)
    n_hours, n_topics = counts.shape
    if n_hours == 0 or n_topics == 0:
        return []
    office = np.array([is_office_hour(h) for h in hours])
    total = counts.sum(axis=1)
    zeros = np.zeros((1, n_topics), dtype=np.int64)
    cum = np.vstack([zeros, np.cumsum(counts, axis=0)])
    cum_tot = np.concatenate([[0], np.cumsum(total)])
    cum_off = np.vstack([zeros, np.cumsum(counts * office[:, None], axis=0)])
    cum_tot_off = np.concatenate([[0], np.cumsum(total * office)])
    guard = params.guard_days * 24
    t_idx = np.arange(n_hours)
    hi = np.clip(t_idx - guard + 1, 0, n_hours)  # baseline hours [lo, hi) in cumulative-sum indexes

    def shares(days: int) -> tuple[np.ndarray, np.ndarray]:
        """Each topic's share in office hours and in the other hours, over `days` days before the guard band."""
        lo = np.clip(hi - days * 24, 0, n_hours)
        c_off = cum_off[hi] - cum_off[lo]
        n_off = (cum_tot_off[hi] - cum_tot_off[lo])[:, None]
        c_oth = (cum[hi] - cum[lo]) - c_off
        n_oth = (cum_tot[hi] - cum_tot[lo])[:, None] - n_off
        share_all = (cum[hi] - cum[lo] + 0.5) / ((cum_tot[hi] - cum_tot[lo])[:, None] + 0.5)
        # a class with little history borrows the overall share
        return (np.where(n_off >= 200, (c_off + 0.5) / (n_off + 0.5), share_all),
                np.where(n_oth >= 200, (c_oth + 0.5) / (n_oth + 0.5), share_all))

    # the expected share is the larger of the long baseline and the recent week: a topic that has been
    # rising for weeks (a season starting) is judged against where it already is, a sudden surge is not
    long_off, long_oth = shares(params.baseline_days)
    recent_off, recent_oth = shares(params.recent_days)
    share_off, share_oth = np.maximum(long_off, recent_off), np.maximum(long_oth, recent_oth)
    dispersion = _dispersion(counts, total, params)
    warm = t_idx >= params.warmup_days * 24
    signals: list[tuple[int, int, str, int, int, float, float]] = []  # (t, k, level, window, count, expected, p)
    checks = [("hourly", w, params.alpha_hour, params.min_count_hour, params.min_ratio_hour, np.ones(n_hours, bool))
              for w in params.windows_hours]
    checks.append(("daily", 24, params.alpha_day, params.min_count_day, params.min_ratio_day,
                   np.array([h.hour == 23 for h in hours])))
    for level, w, alpha, min_count, min_ratio, when in checks:
        start = np.clip(t_idx + 1 - w, 0, None)
        observed = cum[t_idx + 1] - cum[start]
        n_off_w = (cum_tot_off[t_idx + 1] - cum_tot_off[start])[:, None]
        n_oth_w = (cum_tot[t_idx + 1] - cum_tot[start])[:, None] - n_off_w
        expected = share_off * n_off_w + share_oth * n_oth_w
        candidate = (observed >= min_count) & (observed >= min_ratio * expected) & (warm & when)[:, None]
        for t, k in zip(*np.nonzero(candidate), strict=True):
            p = upper_tail(int(observed[t, k]), float(expected[t, k]), float(dispersion[t // 24, k]))
            if p < alpha:
                signals.append((int(t), int(k), level, w, int(observed[t, k]), float(expected[t, k]), p))
    signals.sort(key=lambda s: (s[1], s[0], s[6]))
    episodes: list[Episode] = []
    open_by_topic: dict[int, Episode] = {}
    for t, k, level, w, observed, expected, p in signals:
        ep = open_by_topic.get(k)
        if ep is not None and t - ep.last_signal <= params.cooldown_hours:
            ep.last_signal = t
            continue
        ep = Episode(topic=topics[k], level=level, start=t - w + 1, detected=t, last_signal=t, count=observed,
                     expected=expected, p_value=p)
        open_by_topic[k] = ep
        episodes.append(ep)
    for ep in episodes:
        k = topics.index(ep.topic)
        # the surge started at the first hour of the firing window that was clearly above its expectation
        for h in range(ep.start, ep.detected + 1):
            expected_h = (share_off if office[h] else share_oth)[ep.detected, k] * total[h]
            if counts[h, k] >= max(2.0, 1.5 * expected_h):
                ep.start = h
                break
        span = slice(ep.start, ep.last_signal + 1)
        share = np.where(office[span], share_off[ep.detected, k], share_oth[ep.detected, k])
        ep.total_count = int(counts[span, k].sum())
        ep.total_expected = float((share * total[span]).sum())
        ep.closed = ep.last_signal + params.cooldown_hours < n_hours
    return sorted(episodes, key=lambda e: (e.detected, e.topic))


def _dispersion(counts: np.ndarray, total: np.ndarray, params: DetectorParams) -> np.ndarray:
    """Per day and topic: the squared coefficient of day-to-day variation around the proportional baseline."""
    n_days = counts.shape[0] // 24 + (1 if counts.shape[0] % 24 else 0)
    pad = n_days * 24 - counts.shape[0]
    daily = np.vstack([counts, np.zeros((pad, counts.shape[1]), np.int64)]).reshape(n_days, 24, -1).sum(axis=1)
    daily_tot = np.concatenate([total, np.zeros(pad, np.int64)]).reshape(n_days, 24).sum(axis=1)
    out = np.zeros((n_days, counts.shape[1]))
    for d in range(n_days):
        hi = max(0, d - params.guard_days)
        lo = max(0, hi - params.baseline_days)
        if hi - lo < 7:
            continue
        obs, tot = daily[lo:hi], daily_tot[lo:hi, None]
        exp = obs.sum(axis=0) / max(1, tot.sum()) * tot
        denom = (exp ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            c2 = np.where(denom > 0, (((obs - exp) ** 2) - obs).sum(axis=0) / denom, 0.0)
        out[d] = np.clip(c2, 0.0, params.max_dispersion)
    return out


# ---------------------------------------------------------------------- the store
def hourly_counts(s: Session, start: dt.datetime, end: dt.datetime) -> tuple[list[dt.datetime], list[str], np.ndarray]:
    """Sessions per topic per local hour in [start, end) from the store's citizen turns."""
    hours = []
    h = start.replace(minute=0, second=0, microsecond=0)
    while h < end:
        hours.append(h)
        h += dt.timedelta(hours=1)
    rows = s.execute(select(Turn.topic, Turn.hour_at, func.count(func.distinct(Turn.session_id)))
                     .where(Turn.role == "citizen", Turn.topic.is_not(None), Turn.hour_at >= hours[0] if hours else start,
                            Turn.hour_at < end).group_by(Turn.topic, Turn.hour_at)).all()
    topics = sorted({r[0] for r in rows})
    index = {t: i for i, t in enumerate(topics)}
    pos = {h: i for i, h in enumerate(hours)}
    counts = np.zeros((len(hours), len(topics)), dtype=np.int64)
    for topic, hour_at, n in rows:
        if hour_at in pos:
            counts[pos[hour_at], index[topic]] = n
    return hours, topics, counts


def _details(s: Session, topic: str, start: dt.datetime, end: dt.datetime, examples: int) -> tuple[list[str], list[list]]:
    texts = s.scalars(select(Turn.text).where(Turn.role == "citizen", Turn.topic == topic, Turn.at >= start, Turn.at < end)
                      .order_by(Turn.at).limit(500)).all()
    seen: list[str] = []
    for text in texts:
        if text and not text.startswith("/") and text not in seen:
            seen.append(text)
        if len(seen) >= examples:
            break
    entries = Counter(dict(s.execute(select(KnowledgeAnswer.entry_id, func.count()).where(
        KnowledgeAnswer.topic == topic, KnowledgeAnswer.at >= start, KnowledgeAnswer.at < end).group_by(KnowledgeAnswer.entry_id)).all()))
    return seen, [[e, n] for e, n in entries.most_common(5)]


def message(alert: Alert) -> str:
    """The alert in one Chinese sentence, for the desk banner and the webhook."""
    ratio = alert.count / alert.expected if alert.expected else float("inf")
    return (f"热点预警：“{alert.topic}”自{alert.started_at:%m月%d日 %H:%M}起咨询量明显上升，"
            f"截至{alert.detected_at:%m月%d日 %H:%M}共 {alert.count} 次，通常约 {alert.expected:.1f} 次（{ratio:.1f} 倍）。")


def alert_json(alert: Alert) -> dict[str, Any]:
    """The alert as JSON for the webhook and the desk."""
    return {"id": alert.id, "topic": alert.topic, "level": alert.level, "started_at": alert.started_at.isoformat(),
            "detected_at": alert.detected_at.isoformat(), "count": alert.count, "expected": round(alert.expected, 2),
            "p_value": alert.p_value, "examples": alert.examples, "entries": alert.entries, "text": message(alert),
            "ended_at": alert.ended_at.isoformat() if alert.ended_at else None}


def scan(store: AnalyticsStore, start: dt.datetime, end: dt.datetime, params: DetectorParams | None = None,
         settings: Settings | None = None, notify: bool = True) -> list[Alert]:
    """Detect surges detected in [start, end), store them (once per surge), POST the new ones; returns the new alerts."""
    params = params or DetectorParams.load()
    history = start - dt.timedelta(days=params.baseline_days + params.guard_days)
    hours, topics, counts = store.call(lambda s: hourly_counts(s, history, end))
    episodes = [e for e in detect(counts, hours, topics, params) if hours[e.detected] >= start]

    def save(s: Session) -> list[Alert]:
        new: list[Alert] = []
        for ep in episodes:
            started, detected = hours[ep.start], hours[ep.detected] + dt.timedelta(hours=1)
            last = hours[ep.last_signal] + dt.timedelta(hours=1)
            ended = last + dt.timedelta(hours=params.cooldown_hours) if ep.closed else None
            same = s.scalars(select(Alert).where(Alert.topic == ep.topic, Alert.last_signal_at >= started - dt.timedelta(
                hours=params.cooldown_hours), Alert.started_at <= last).order_by(Alert.started_at)).first()
            examples, entries = _details(s, ep.topic, started, last, params.examples)
            if same is not None:  # the same surge seen by an earlier run: bring it up to date
                same.last_signal_at, same.ended_at = max(same.last_signal_at, last), ended
                same.total_count, same.total_expected = ep.total_count, ep.total_expected
                same.examples, same.entries = examples, entries
                continue
            alert = Alert(topic=ep.topic, level=ep.level, started_at=started, detected_at=detected, last_signal_at=last,
                          ended_at=ended, count=ep.count, expected=ep.expected, p_value=ep.p_value, total_count=ep.total_count,
                          total_expected=ep.total_expected, examples=examples, entries=entries)
            s.add(alert)
            s.flush()
            new.append(alert)
        return new
    new = store.call(save)
    settings = settings or load_settings()
    if notify and settings.alert_webhook and new:
        results = {a.id: post_webhook(settings.alert_webhook, alert_json(a)) for a in new}
        store.call(lambda s: [setattr(s.get(Alert, i), "notified", r) for i, r in results.items()])
    return new


def post_webhook(url: str, body: dict[str, Any]) -> str:
    """POST one alert; returns 'ok 200' or what went wrong (alerts are stored whatever the hook says)."""
    import httpx

    try:
        r = httpx.post(url, json=body, timeout=5)
        return f"{'ok' if r.is_success else 'http'} {r.status_code}"
    except httpx.HTTPError as exc:
        return f"failed: {type(exc).__name__}"[:64]


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m analytics.alerts [--since YYYY-MM-DD] [--until YYYY-MM-DDTHH] [--no-notify]."""
    p = argparse.ArgumentParser(prog="python -m analytics.alerts", description="Hot-issue early warning over the analytics store.")
    p.add_argument("--since", help="first local day to report surges for (default: yesterday)")
    p.add_argument("--until", help="end, local (default: the start of the current hour)")
    p.add_argument("--no-notify", action="store_true", help="store alerts without POSTing them")
    args = p.parse_args(argv)
    try:
        settings = load_settings()
        params = DetectorParams.load()
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    now = dt.datetime.now(settings.zone).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    until = dt.datetime.fromisoformat(args.until) if args.until else now
    since = dt.datetime.fromisoformat(args.since) if args.since else dt.datetime.combine(until.date() - dt.timedelta(days=1), dt.time())
    store = AnalyticsStore(settings.database_url)
    new = scan(store, since, until, params, settings, notify=not args.no_notify)
    for alert in new:
        print(message(alert))
    print(f"[alerts] {len(new)} new alert(s) between {since:%Y-%m-%d %H:%M} and {until:%Y-%m-%d %H:%M}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
