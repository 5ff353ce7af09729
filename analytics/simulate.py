"""A realistic year (or any span) of hotline traffic, for demos, tests and the benchmark.

Two layers:
- `TrafficModel` says how many sessions ask about each topic in each local hour: a workday volume,
  weekday factors (Monday peak, quiet weekends), the hour-of-day profile of a 24-hour service,
  Chinese public holidays and their make-up workdays (调休), the day after the Spring Festival, the
  pension-certification campaign (May–June), the January contribution-base change, the residents'
  insurance payment season (Sept–Dec), day-to-day noise per topic (gamma, so counts are over-dispersed
  like real ones) and optional planted surges (one topic ×3 from a given hour).
- `render` turns those counts into conversations written in the services' own formats
  (analytics.sources: Rasa broker events, web app hand-offs/ratings/work orders, call store rows, and the
  web app's and the gateway's hotline events in the events table, as the real services publish them), which
  the ordinary ingestion then reads. Half the card-loss and card-progress sessions use the bot's card
  self-service (办理) rather than only asking. Questions are the knowledge base's own paraphrases; a few carry a
  raw phone or ID number, as citizens type them, to keep the masking honest.
- `CallerPlan` says who rings: each phone session gets a caller number (keyed by the gateway's own
  voice.store.caller_key), some callers ring again about the same topic within a few days (the report's
  重复来电), and a few calls carry no number.

Command line: python -m analytics.simulate --start 2026-01-01 --days 365 --out var/sim [--surge …] [--ingest]
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from analytics.calendar import MAKEUP_WORKDAYS, is_holiday, is_office_hour, is_workday
from analytics.sources import SourceWriter
from analytics.topics import COMPLAINT, HUMAN, NOT_FOUND, OUT_OF_SCOPE

WEEKDAY_FACTOR = {1: 1.30, 2: 1.08, 3: 1.0, 4: 0.97, 5: 0.90, 6: 0.40, 7: 0.34}
HOLIDAY_FACTOR = 0.30
# share of a day's sessions per local hour (a 24-hour service: office hours carry most of it)
WORKDAY_HOURS = np.array([0.4, 0.25, 0.2, 0.2, 0.25, 0.5, 1.0, 2.2, 5.5, 9.8, 10.2, 8.6, 4.6, 5.2, 8.6, 9.0, 8.0, 5.4,
                          3.4, 3.3, 3.4, 2.5, 1.5, 0.8])
RESTDAY_HOURS = np.array([0.8, 0.5, 0.3, 0.3, 0.3, 0.5, 1.0, 2.5, 4.5, 7.0, 8.0, 7.5, 6.0, 6.0, 7.0, 7.2, 6.8, 5.5,
                          4.8, 5.0, 5.0, 4.0, 2.6, 1.5])
SPECIAL_SHARES = {NOT_FOUND: 0.07, OUT_OF_SCOPE: 0.02, HUMAN: 0.03, COMPLAINT: 0.006}
SPECIAL_TEXTS = {
    NOT_FOUND: ["我家老人的那个补贴今年咋还没到账", "单位让我签个协议说不交社保行不行", "社保那个新出的政策是啥意思", "俺想问问那个证明咋开",
                "新办的那个业务在哪弄"],
    OUT_OF_SCOPE: ["明天天气怎么样", "公积金怎么提取", "帮我订一张去北京的高铁票", "护照在哪里办"],
    HUMAN: ["转人工", "人工客服", "我要找人工", "帮我接一下社保卡窗口"],
    COMPLAINT: ["我要投诉", "你们的服务太差了我要投诉", "打了三次电话都没人管"],
}
RATINGS = (("满意", 0.72), ("基本满意", 0.18), ("不满意", 0.10))
# card self-service (actions/card_service.py): this share of the topic's sessions use the bot's transaction (办理)
# instead of only asking about it: the intent, the knowledge guidance, the identity question, the result
SELF_SERVICE_SHARE = 0.5
SELF_SERVICE = {"社保卡/挂失": ("report_card_loss", "已为您办理社保卡临时挂失，挂失期间卡片暂停使用。"),
                "社保卡/制卡进度": ("query_card_progress", "您的社保卡正在制作中，制成后会短信通知您领取。")}
WORK_ORDER_CLOSED_AFTER = 26 * 3600.0  # a work order is closed the next working day, within its 3-day deadline
# phone callers (CallerPlan): this share of the phone sessions is a caller ringing again about the same topic, when
# somebody called about it in the last REPEAT_CALL_DAYS days; this share of calls carries no number (AudioSocket
# from a PBX without caller ID, withheld numbers); this share of numbers arrives as +86… (the gateway normalises it)
REPEAT_CALL_SHARE = 0.10
REPEAT_CALL_DAYS = 5  # inside the repeat figure's 7 days (analytics.figures.REPEAT_DAYS): every planned repeat counts
NO_NUMBER_SHARE = 0.05
INTERNATIONAL_SHARE = 0.2


def _ramp(day: dt.date, start: dt.date, end: dt.date, ramp_days: int, peak: float) -> float:
    """1 outside [start, end], rising linearly to `peak` over ramp_days at both ends."""
    if day < start or day > end:
        return 1.0
    edge = min((day - start).days, (end - day).days)
    return 1.0 + (peak - 1.0) * min(1.0, (edge + 1) / ramp_days)


@dataclass(frozen=True)
class Surge:
    """A planted surge: the topic's rate times `factor` from `start` (local) for `hours` hours."""

    topic: str
    start: dt.datetime
    hours: int = 48
    factor: float = 3.0

    @classmethod
    def parse(cls, spec: str) -> Surge:
        """'社保卡/挂失@2026-03-10T09:00x3:48' -> topic, start, factor, hours."""
        topic, rest = spec.split("@", 1)
        start, _, tail = rest.partition("x")
        factor, _, hours = tail.partition(":")
        return cls(topic, dt.datetime.fromisoformat(start), int(hours or 48), float(factor or 3))


@dataclass
class TrafficModel:
    """Expected and drawn sessions per topic per local hour."""

    daily_sessions: float = 600.0  # an ordinary Wednesday
    seed: int = 1
    surges: list[Surge] = field(default_factory=list)
    noise_cv: float = 0.12  # day-to-day variation of each topic's rate (gamma)
    seasons: bool = True

    @cached_property
    def catalogue(self) -> dict[str, list[tuple[str, str, str]]]:
        """Topic -> [(entry id, category, question or paraphrase)] from the knowledge content."""
        from knowledge.schema import load_entries

        out: dict[str, list[tuple[str, str, str]]] = {}
        for e in load_entries():
            out.setdefault(e.category, []).extend((e.id, e.category, q) for q in e.views)
        return out

    @cached_property
    def topics(self) -> list[str]:
        """Knowledge categories, then the topics of their own (未找到答案 …)."""
        return sorted(self.catalogue) + list(SPECIAL_SHARES)

    @cached_property
    def shares(self) -> np.ndarray:
        """Each topic's share of an ordinary day (fixed mix: the same for every seed)."""
        rng = np.random.default_rng(20261204)
        kb = sorted(self.catalogue)
        entries = np.array([len({e for e, _, _ in self.catalogue[c]}) for c in kb], dtype=float)
        weights = entries * rng.lognormal(0.0, 0.7, len(kb))
        kb_share = 1.0 - sum(SPECIAL_SHARES.values())
        return np.concatenate([weights / weights.sum() * kb_share, list(SPECIAL_SHARES.values())])

    def day_volume(self, day: dt.date) -> float:
        """Expected sessions on a day, all topics."""
        if is_holiday(day):
            factor = HOLIDAY_FACTOR
        elif day.isoformat() in MAKEUP_WORKDAYS:
            factor = WEEKDAY_FACTOR[3]
        else:
            factor = WEEKDAY_FACTOR[day.isoweekday()]
            if is_holiday(day - dt.timedelta(days=1)) and is_workday(day):
                factor *= 1.35  # the first working day after a holiday
        return self.daily_sessions * factor

    def season(self, day: dt.date) -> np.ndarray:
        """Seasonal multiplier of each topic on a day."""
        mult = np.ones(len(self.topics))
        if not self.seasons:
            return mult
        y = day.year
        for i, topic in enumerate(self.topics):
            if topic.startswith("待遇资格认证"):
                mult[i] = _ramp(day, dt.date(y, 5, 1), dt.date(y, 6, 30), 21, 2.2)
            elif topic in ("参保缴费/缴费基数", "参保缴费/灵活就业"):
                mult[i] = _ramp(day, dt.date(y, 1, 2), dt.date(y, 2, 20), 12, 2.0)
            elif topic in ("参保缴费/城乡居民", "医疗保险/居民医保"):
                mult[i] = _ramp(day, dt.date(y, 9, 1), dt.date(y, 12, 31), 21, 1.6)
        return mult

    def hours(self, start: dt.date, days: int) -> list[dt.datetime]:
        """The local hours of the span."""
        first = dt.datetime.combine(start, dt.time())
        return [first + dt.timedelta(hours=h) for h in range(days * 24)]

    def expected(self, start: dt.date, days: int) -> np.ndarray:
        """Expected sessions [hour, topic] without noise (planted surges included)."""
        out = np.zeros((days * 24, len(self.topics)))
        for d in range(days):
            day = start + dt.timedelta(days=d)
            profile = WORKDAY_HOURS if is_workday(day) else RESTDAY_HOURS
            profile = profile / profile.sum()
            mix = self.shares * self.season(day)  # a season adds its questions on top of the ordinary ones
            out[d * 24:(d + 1) * 24] = self.day_volume(day) * np.outer(profile, mix)
        first = dt.datetime.combine(start, dt.time())
        for surge in self.surges:
            k = self.topics.index(surge.topic)
            h0 = int((surge.start - first).total_seconds() // 3600)
            lo, hi = max(0, h0), min(len(out), h0 + surge.hours)
            out[lo:hi, k] *= surge.factor
        return out

    def counts(self, start: dt.date, days: int) -> np.ndarray:
        """Drawn sessions [hour, topic]: Poisson around the expected rate times a gamma day-noise per topic."""
        rng = np.random.default_rng(self.seed)
        lam = self.expected(start, days)
        shape = 1.0 / self.noise_cv ** 2
        noise = rng.gamma(shape, 1.0 / shape, size=(days, len(self.topics)))
        return rng.poisson(lam * np.repeat(noise, 24, axis=0))


@dataclass(frozen=True)
class PlannedCall:
    """One phone session's caller, as CallerPlan chose it."""

    call_id: str
    number: str  # the caller's number as the simulation knows it ("" without one)
    dialled_as: str  # as the gateway receives it (sometimes +86…)
    topic: str
    ts: float
    repeat: bool  # a caller who rang about this topic in the last REPEAT_CALL_DAYS days


class CallerPlan:
    """Who rings: a number for each phone session, a new caller's or, for REPEAT_CALL_SHARE of them, that of somebody
    who called about the same topic in the last REPEAT_CALL_DAYS days (a repeat caller).

    It draws from its own random stream (seed + 2), so planning callers changes nothing else the simulation draws;
    new callers get distinct numbers. `calls` is the plan (the tests count the repeat callers from it)."""

    def __init__(self, seed: int, repeat_share: float = REPEAT_CALL_SHARE, repeat_days: float = REPEAT_CALL_DAYS,
                 no_number_share: float = NO_NUMBER_SHARE) -> None:
        self.rng = np.random.default_rng(seed + 2)
        self.prefix = 130 + seed % 70  # 130…199: plans of other seeds rendered into the same sources share no number
        self.repeat_share, self.window, self.no_number_share = repeat_share, repeat_days * 86400.0, no_number_share
        self.recent: dict[str, deque[tuple[float, str]]] = defaultdict(deque)  # topic -> (time, number), oldest first
        self.calls: list[PlannedCall] = []
        self._callers = 0

    def _new_number(self) -> str:
        """A mobile number nobody had yet (7919 is prime to 10^8: n -> n·7919 mod 10^8 repeats no number)."""
        n = self._callers
        self._callers += 1
        return f"{self.prefix}{(n * 7919 + 3_000_017) % 10**8:08d}"

    def caller(self, call_id: str, topic: str, ts: float, hour_start: float) -> str:
        """The number the gateway receives for this call ("" for a call without one); planned in `calls`."""
        if self.rng.random() < self.no_number_share:
            self.calls.append(PlannedCall(call_id, "", "", topic, ts, False))
            return ""
        recent = self.recent[topic]
        # calls of this hour are planned in topic order, not time order: what stays after this prune is at most an
        # hour older than the window, so a repeat is always within REPEAT_CALL_DAYS and 2 hours of the caller's last call
        while recent and recent[0][0] < hour_start - self.window:
            recent.popleft()
        repeat = bool(recent) and self.rng.random() < self.repeat_share
        number = recent[int(self.rng.integers(len(recent)))][1] if repeat else self._new_number()
        recent.append((ts, number))
        dialled = "+86" + number if self.rng.random() < INTERNATIONAL_SHARE else number
        self.calls.append(PlannedCall(call_id, number, dialled, topic, ts, repeat))
        return dialled


@dataclass
class RenderStats:
    """What `render` wrote."""

    sessions: int = 0
    events: int = 0  # Rasa's events
    hotline_events: int = 0  # the web app's and the gateway's
    calls: int = 0
    repeat_calls: int = 0  # calls planned as a repeat caller's (CallerPlan)
    seconds: float = 0.0


def render(model: TrafficModel, start: dt.date, days: int, writer: SourceWriter, zone: ZoneInfo | None = None,
           counts: np.ndarray | None = None, callers: CallerPlan | None = None) -> RenderStats:
    """Write the model's sessions as conversations into the source databases (see the module docstring); `callers`
    (default: a CallerPlan of the model's seed) numbers the phone sessions."""
    zone = zone or ZoneInfo("Asia/Shanghai")
    rng = np.random.default_rng(model.seed + 1)
    callers = callers or CallerPlan(model.seed)
    counts = model.counts(start, days) if counts is None else counts
    hours = model.hours(start, days)
    stats = RenderStats()
    planned, written = len(callers.calls), (writer.events_written, writer.hotline_written)
    began = time.perf_counter()
    # ids shaped like the services' (32 hex digits, as a uuid or a call id: mask_text leaves those alone, so the hotline
    # events' conversation ids stay as Rasa's sender ids), distinct per seed, starting with a letter
    seed_bits = (0xA << 124) | ((model.seed & 0xFFFF) << 64)
    for h, hour in enumerate(hours):
        office = is_office_hour(hour)
        hour_start = hour.replace(tzinfo=zone).timestamp()
        for k in np.nonzero(counts[h])[0]:
            topic = model.topics[k]
            for _ in range(int(counts[h, k])):
                phone = rng.random() < (0.6 if office else 0.35)
                ts = hour_start + float(rng.uniform(0, 50 * 60))
                key = uuid.UUID(int=seed_bits | int(rng.integers(2**62))).hex
                number = callers.caller("CA" + key, topic, ts, hour_start) if phone else ""
                _render_session(model, writer, rng, topic, ts, phone, office, key, number)
                stats.sessions += 1
        if h % 24 == 23:
            writer.flush()
    writer.flush()
    stats.events, stats.hotline_events = writer.events_written - written[0], writer.hotline_written - written[1]
    stats.calls = len(callers.calls) - planned
    stats.repeat_calls = sum(c.repeat for c in callers.calls[planned:])
    stats.seconds = time.perf_counter() - began
    return stats


def _question(model: TrafficModel, rng: np.random.Generator, topic: str) -> tuple[str, str | None, str | None]:
    if topic in SPECIAL_TEXTS:
        texts = SPECIAL_TEXTS[topic]
        return texts[int(rng.integers(len(texts)))], None, None
    options = model.catalogue[topic]
    entry, category, text = options[int(rng.integers(len(options)))]
    roll = rng.random()
    if roll < 0.006:
        text += f" 我电话是1{int(rng.integers(3, 10))}{int(rng.integers(10**8, 10**9))}"
    elif roll < 0.01:
        text += f" 身份证号370102{int(rng.integers(1950, 2005))}0{int(rng.integers(1, 10))}1{int(rng.integers(0, 10))}{int(rng.integers(100, 1000))}"
    return text, entry, category


def _render_session(model: TrafficModel, w: SourceWriter, rng: np.random.Generator, topic: str, ts: float, phone: bool,
                    office: bool, key: str, caller: str = "") -> None:
    sender = ("CA" if phone else "w") + key
    channel = "phone" if phone else "web"
    w.session(sender, ts)
    t = ts + 3
    text, entry, category = _question(model, rng, topic)
    handoff_reason = None
    abandoned = False
    if topic == HUMAN or topic == COMPLAINT:
        w.user(sender, t, text, "request_human" if topic == HUMAN else "complain", channel)
        handoff_reason = "市民要求人工" if topic == HUMAN else "市民投诉/情绪不满"
    elif topic == OUT_OF_SCOPE:
        w.user(sender, t, text, "out_of_scope", channel)
        w.kb_reply(sender, t + 0.1, "out_of_scope", score=0.2)
    elif topic in SELF_SERVICE and rng.random() < SELF_SERVICE_SHARE:
        intent, done = SELF_SERVICE[topic]
        w.user(sender, t, text, intent, channel)
        w.kb_reply(sender, t + 0.1, "confident", entry, category, score=round(float(rng.uniform(0.75, 1.0)), 4))
        w.utter(sender, t + 0.2, "utter_ask_id_number", "请告诉我您的身份证号码？")
        if rng.random() < 0.12:
            abandoned = True  # left at the identity question
        else:
            t += 25
            w.user(sender, t, f"身份证尾号{int(rng.integers(1000, 10000))}", "inform", channel)  # as the masking broker keeps it
            w.utter(sender, t + 0.1, "action_verify_identity", done)
    elif topic == NOT_FOUND:
        w.user(sender, t, text, "ask_question", channel)
        w.kb_reply(sender, t + 0.1, "none", score=0.1)
        if rng.random() < 0.45:
            t += 40
            w.user(sender, t, "那我找人工吧", "request_human", channel)
            handoff_reason = "机器人连续未能回答"
    else:
        w.user(sender, t, text, "ask_question", channel)
        siblings = sorted({e for e, _, _ in model.catalogue[topic]})
        roll = rng.random()
        if roll < 0.83:
            w.kb_reply(sender, t + 0.1, "confident", entry, category, score=round(float(rng.uniform(0.75, 1.0)), 4))
        else:
            offered = [entry] + [e for e in siblings if e != entry][:2]
            w.kb_reply(sender, t + 0.1, "unsure", score=round(float(rng.uniform(0.4, 0.7)), 4), suggestions=offered)
            choice = rng.random()
            if choice < 0.35:
                abandoned = True
            elif choice < 0.9:
                t += 20
                w.user(sender, t, "/ask_question{\"kb_entry\": \"" + entry + "\"}", "ask_question", channel)
                w.kb_reply(sender, t + 0.1, "chosen", entry, category, score=1.0)
            else:
                t += 20
                w.user(sender, t, "/request_human", "request_human", channel)
                handoff_reason = "市民要求人工"
        if not abandoned and handoff_reason is None:
            fb = rng.random()
            if fb < 0.15:
                t += 30
                w.user(sender, t, "/feedback_helpful", "feedback_helpful", channel)
                w.utter(sender, t + 0.1, "utter_feedback_thanks", "谢谢您的反馈！")
            elif fb < 0.22:
                t += 30
                w.user(sender, t, "/feedback_unhelpful", "feedback_unhelpful", channel)
                w.feedback_reply(sender, t + 0.1)
                if rng.random() < 0.4:
                    t += 30
                    w.user(sender, t, "转人工", "request_human", channel)
                    handoff_reason = "市民要求人工"
            elif fb < 0.27:
                t += 40
                w.user(sender, t, "还是转人工吧", "request_human", channel)
                handoff_reason = "市民要求人工"
    if handoff_reason:
        t += 1
        if phone:
            w.handoff(sender, t, "phone", "综合", handoff_reason)
        else:
            claimed = rng.random() < 0.9
            wait = float(rng.exponential(150 if office else 60)) + 5
            handle = float(rng.lognormal(math.log(240), 0.6))
            rating = None
            if claimed and rng.random() < 0.6:
                r = rng.random()
                rating = "满意" if r < RATINGS[0][1] else "基本满意" if r < RATINGS[0][1] + RATINGS[1][1] else "不满意"
            # not claimed: the citizen leaves the chat page after waiting, and the web app closes it as abandoned
            w.handoff(sender, t, "web", "综合" if topic in SPECIAL_SHARES else topic.split("/")[0][:16], handoff_reason,
                      claimed_after=wait if claimed else None, handled_for=handle if claimed else None, rating=rating,
                      abandoned_after=None if claimed else wait)
            if claimed and rng.random() < 0.05:
                w.work_order(sender, t + wait + handle, "咨询", "需进一步核实的问题", closed_after=WORK_ORDER_CLOSED_AFTER)
    if phone:
        outcome = "transferred" if handoff_reason else "caller_hangup" if abandoned else "answered_by_bot"
        w.call(sender, ts, t + 30, outcome, handoff_reason or "", caller=caller,
               transport="media_stream" if caller else "audiosocket")  # AudioSocket carries no number


def main(argv: list[str] | None = None) -> int:
    """Command line: write a span of simulated traffic into source databases, optionally ingest it."""
    p = argparse.ArgumentParser(prog="python -m analytics.simulate", description="Simulate hotline traffic in the services' formats.")
    p.add_argument("--start", default="2026-01-01", help="first local day (YYYY-MM-DD)")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--daily", type=float, default=600.0, help="sessions on an ordinary Wednesday")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--surge", action="append", default=[], help="plant a surge: TOPIC@YYYY-MM-DDTHH:MMxFACTOR:HOURS")
    p.add_argument("--out", default="var/sim", help="folder for rasa_events.db, webapp.db, voice_calls.sqlite3")
    p.add_argument("--ingest", action="store_true", help="then ingest them into ANALYTICS_DATABASE_URL")
    args = p.parse_args(argv)
    model = TrafficModel(daily_sessions=args.daily, seed=args.seed, surges=[Surge.parse(s) for s in args.surge])
    unknown = [s.topic for s in model.surges if s.topic not in model.topics]
    if unknown:
        print(f"Unknown topic {unknown[0]!r}: use a knowledge category such as 社保卡/挂失.", file=sys.stderr)
        return 2
    out = Path(args.out)
    writer = SourceWriter(out / "rasa_events.db", f"sqlite:///{(out / 'webapp.db').resolve()}", out / "voice_calls.sqlite3")
    stats = render(model, dt.date.fromisoformat(args.start), args.days, writer)
    writer.close()
    print(f"[simulate] {stats.sessions} sessions, {stats.events} Rasa events and {stats.hotline_events} hotline events "
          f"({stats.calls} calls, {stats.repeat_calls} from repeat callers) written to {out}/ in {stats.seconds:.1f} s")
    if args.ingest:
        from analytics.ingest import Ingester
        from analytics.settings import Settings, load_settings
        from analytics.store import AnalyticsStore

        base = load_settings()
        settings = Settings(database_url=base.database_url, rasa_events_url=f"sqlite:///{(out / 'rasa_events.db').resolve()}",
                            tracker_store_url="sqlite:///" + str((out / "none.db").resolve()),
                            webapp_database_url=f"sqlite:///{(out / 'webapp.db').resolve()}",
                            voice_db_path=str(out / "voice_calls.sqlite3"), timezone=base.timezone,
                            abandon_minutes=base.abandon_minutes, alert_webhook=base.alert_webhook)
        from analytics.demo import mark_simulated

        store = AnalyticsStore(settings.database_url)
        mark_simulated(store, f"{args.start} +{args.days} days")  # its reports say the figures are simulated
        report = Ingester(store, settings).run(replay=True)
        print(f"[simulate] ingested: {report.line()} (the store is marked as holding simulated data)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
