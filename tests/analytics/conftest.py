"""Fixtures of the analytics tests: a small hand-counted history written in the services' own formats."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from analytics.ingest import Ingester
from analytics.settings import Settings
from analytics.sources import SourceWriter
from analytics.store import AnalyticsStore

ZONE = ZoneInfo("Asia/Shanghai")
RAW_ID, RAW_PHONE = "370102199003071238", "13912345678"


def T(local: str) -> float:
    """Epoch seconds of a local (Asia/Shanghai) time 'YYYY-MM-DD HH:MM[:SS]'."""
    return dt.datetime.fromisoformat(local).replace(tzinfo=ZONE).timestamp()


@dataclass
class Sources:
    """Paths and URLs of one test's source databases and analytics store."""

    events: Path
    webapp_url: str
    calls: Path
    analytics_url: str

    def settings(self, **overrides) -> Settings:
        """Settings pointing at these databases."""
        values = {"database_url": self.analytics_url, "rasa_events_url": f"sqlite:///{self.events}",
                  "tracker_store_url": f"sqlite:///{self.events.parent / 'no_tracker.db'}", "webapp_database_url": self.webapp_url,
                  "voice_db_path": str(self.calls), "timezone": "Asia/Shanghai", "abandon_minutes": 30, "alert_webhook": ""}
        return Settings(**{**values, **overrides})

    def ingester(self, now: str = "2026-03-10 00:00", **overrides) -> Ingester:
        """An ingester into this test's analytics store."""
        settings = self.settings(**overrides)
        return Ingester(AnalyticsStore(settings.database_url), settings, now=dt.datetime.fromisoformat(now))


@pytest.fixture()
def sources(tmp_path: Path) -> Sources:
    """Empty source databases and analytics store under tmp_path."""
    return Sources(tmp_path / "rasa_events.db", f"sqlite:///{tmp_path / 'webapp.db'}", tmp_path / "voice_calls.sqlite3",
                   f"sqlite:///{tmp_path / 'analytics.db'}")


def write_history(src: Sources) -> None:
    """The hand-counted history (docs in tests/analytics/test_figures.py): 10 sessions on 2 and 3 March 2026."""
    w = SourceWriter(src.events, src.webapp_url, src.calls)
    # S1 web: card loss answered, 有帮助 -> direct
    w.session("w1", T("2026-03-02 09:05"))
    w.user("w1", T("2026-03-02 09:05:10"), "社保卡丢了咋办", "ask_question")
    w.kb_reply("w1", T("2026-03-02 09:05:11"), "confident", "card-0501", "社保卡/挂失")
    w.user("w1", T("2026-03-02 09:06"), "/feedback_helpful", "feedback_helpful")
    w.utter("w1", T("2026-03-02 09:06:01"), "utter_feedback_thanks", "谢谢您的反馈！")
    # S2 web: replacement card answered, 没帮助, then 转人工: waited 60 s, served 300 s, rated 满意
    w.session("w2", T("2026-03-02 09:20"))
    w.user("w2", T("2026-03-02 09:20:05"), "社保卡丢了怎么补", "ask_question")
    w.kb_reply("w2", T("2026-03-02 09:20:06"), "confident", "card-0536", "社保卡/补换卡")
    w.user("w2", T("2026-03-02 09:21"), "/feedback_unhelpful", "feedback_unhelpful")
    w.feedback_reply("w2", T("2026-03-02 09:21:01"))
    w.user("w2", T("2026-03-02 09:22"), "转人工", "request_human")
    w.handoff("w2", T("2026-03-02 09:22:01"), "web", "社保卡", "市民要求人工", claimed_after=60, handled_for=300, rating="满意")
    # S3 phone: e-card question, suggestions offered, the caller hangs up -> abandoned (and direct by definition)
    w.session("CA1", T("2026-03-02 10:10"))
    w.user("CA1", T("2026-03-02 10:10:05"), "电子社保卡咋领", "ask_question", "phone")
    w.kb_reply("CA1", T("2026-03-02 10:10:06"), "unsure", suggestions=["ecard-0004", "ecard-0006"], score=0.6)
    w.call("CA1", T("2026-03-02 10:10"), T("2026-03-02 10:11"), "caller_hangup")
    # S4 phone: flexible-employment answer, then a person: transferred to the PBX queue (never claimed at the desk)
    w.session("CA2", T("2026-03-02 10:30"))
    w.user("CA2", T("2026-03-02 10:30:05"), "灵活就业怎么参保", "ask_question", "phone")
    w.kb_reply("CA2", T("2026-03-02 10:30:06"), "confident", "enrol-0018", "参保缴费/灵活就业")
    w.user("CA2", T("2026-03-02 10:31"), "转人工", "request_human", "phone")
    w.handoff("CA2", T("2026-03-02 10:31:01"), "phone", "综合", "市民要求人工")
    w.call("CA2", T("2026-03-02 10:30"), T("2026-03-02 10:32"), "transferred", "市民要求人工")
    # S5 web: a greeting only -> direct, no topic
    w.session("w3", T("2026-03-02 14:00"))
    w.user("w3", T("2026-03-02 14:00:05"), "你好", "greet")
    w.utter("w3", T("2026-03-02 14:00:06"), "utter_greet", "您好，我是社保智能客服。")
    # S6 web: card progress with a raw ID number typed in, then 转人工, never claimed -> queue abandoned
    w.session("w4", T("2026-03-02 15:00"))
    w.user("w4", T("2026-03-02 15:00:05"), f"我的身份证号{RAW_ID} 电话{RAW_PHONE} 查下卡的进度", "query_card_progress")
    w.utter("w4", T("2026-03-02 15:00:06"), "utter_ask_id_number", "请告诉我您的身份证号码？")
    w.user("w4", T("2026-03-02 15:01"), "转人工", "request_human")
    w.handoff("w4", T("2026-03-02 15:01:01"), "web", "社保卡", "市民要求人工")
    # S7 web, the citizen of S1 the next morning: card loss again, no feedback -> direct
    w.session("w1", T("2026-03-03 09:00"))
    w.user("w1", T("2026-03-03 09:00:05"), "社保卡丢了咋办", "ask_question")
    w.kb_reply("w1", T("2026-03-03 09:00:06"), "confident", "card-0501", "社保卡/挂失")
    # S8 web: the page was opened, nothing said -> not a session in the figures
    w.session("w5", T("2026-03-03 10:00"))
    # S9 web: a complaint: waited 120 s, served 600 s, rated 不满意
    w.session("w6", T("2026-03-03 11:00"))
    w.user("w6", T("2026-03-03 11:00:05"), "我要投诉", "complain")
    w.handoff("w6", T("2026-03-03 11:00:06"), "web", "综合", "市民投诉/情绪不满", claimed_after=120, handled_for=600, rating="不满意")
    # S10 web: 转人工 straight away: waited 30 s, served 100 s, not rated
    w.session("w7", T("2026-03-03 16:00"))
    w.user("w7", T("2026-03-03 16:00:05"), "转人工", "request_human")
    w.handoff("w7", T("2026-03-03 16:00:06"), "web", "综合", "市民要求人工", claimed_after=30, handled_for=100)
    w.close()


@pytest.fixture()
def history(sources: Sources) -> Sources:
    """The hand-counted history written to the sources (not yet ingested)."""
    write_history(sources)
    return sources
