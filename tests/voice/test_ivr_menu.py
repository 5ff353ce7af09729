"""The keypad menu generator: layout checks, ranking (answer counts or content order), the real menu."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from knowledge.schema import KbEntry, load_entries
from voice.ivr.menu import (
    Answer,
    GroupSpec,
    Layout,
    Menu,
    MenuError,
    SelfService,
    ServiceSpec,
    build_menu,
    load_layout,
    load_menu,
    spoken_question,
    walk,
)
from voice.ivr.ranking import answer_counts

REPO = Path(__file__).resolve().parents[2]


def entry(entry_id: str, category: str, question: str) -> KbEntry:
    return KbEntry(id=entry_id, category=category, question=question, paraphrases=(), answer="答",
                   voice_answer=f"{entry_id}的语音答案。", source="s", reviewed="2026-01-01", local_review=False)


ENTRIES = [
    entry("card-0001", "社保卡/挂失", "社保卡丢了怎么办？"),
    entry("card-0002", "社保卡/挂失", "怎么电话挂失？"),
    entry("card-0003", "社保卡/解挂", "找到了怎么解挂？"),
    entry("card-0004", "社保卡/挂失", "网上能挂失吗？"),
    entry("card-0005", "社保卡/申领", "第一次怎么申领？"),
    entry("pension-0001", "退休与养老待遇/退休年龄", "几岁退休？"),
    entry("pension-0002", "退休与养老待遇/退休年龄", "女职工几岁退休？"),
    entry("pension-0003", "退休与养老待遇/养老金发放", "养老金几号发？"),
    entry("unemp-0001", "失业保险/申领条件", "失业金怎么领？"),
]


def layout(*items: GroupSpec | ServiceSpec, max_options: int = 3, max_phrase_chars: int = 20) -> Layout:
    return Layout(main=GroupSpec("主菜单", items), max_options=max_options, max_phrase_chars=max_phrase_chars)


def titles(menu: Menu) -> list[str]:
    return [option.title for option in menu.options]


def ids(menu: Menu) -> list[str]:
    return [option.entry_id for option in menu.options if isinstance(option, Answer)]


def test_without_counts_sub_topics_take_turns_in_content_order() -> None:
    spec = ServiceSpec("挂失", ("社保卡/挂失", "社保卡/解挂"), self_service=SelfService("办理挂失", "/report_card_loss"))
    menu = build_menu(ENTRIES, layout(spec, ServiceSpec("其他", rest=True), max_options=4)).root
    loss = menu.options[0]
    assert isinstance(loss, Menu) and loss.options[0] == SelfService("办理挂失", "/report_card_loss")
    # the first question of each listed category in turn, then the second: 挂失 1, 解挂 1, 挂失 2
    assert ids(loss) == ["card-0001", "card-0003", "card-0002"]
    # the rest takes its top-level categories in turn (社保卡, 退休与养老待遇, 失业保险), and inside one of
    # them its sub-topics in turn: 退休年龄 (pension-0001), then 养老金发放 (pension-0003) before pension-0002
    assert ids(menu.options[1]) == ["card-0005", "pension-0001", "unemp-0001", "pension-0003"]  # type: ignore[arg-type]


def test_answer_counts_put_the_most_answered_first_and_ties_keep_the_content_order() -> None:
    spec = ServiceSpec("挂失", ("社保卡/挂失", "社保卡/解挂"))
    counts = {"card-0004": 30, "card-0002": 30, "card-0003": 5}
    generated = build_menu(ENTRIES, layout(spec, ServiceSpec("其他", rest=True)), counts)
    assert generated.ranked_by == "answer counts"
    assert ids(generated.root.options[0]) == ["card-0002", "card-0004", "card-0003"]  # type: ignore[arg-type]
    assert build_menu(ENTRIES, layout(spec, ServiceSpec("其他", rest=True))).ranked_by == "content order"


def test_the_most_specific_category_wins_and_an_unclaimed_area_is_an_error() -> None:
    broad, narrow = ServiceSpec("社保卡", ("社保卡",)), ServiceSpec("挂失", ("社保卡/挂失",))
    menu = build_menu(ENTRIES, layout(broad, narrow, ServiceSpec("其他", ("退休与养老待遇", "失业保险")))).root
    assert set(ids(menu.options[1])) <= {"card-0001", "card-0002", "card-0004"}  # type: ignore[arg-type]
    assert "card-0001" not in ids(menu.options[0])  # type: ignore[arg-type]
    with pytest.raises(MenuError, match="失业保险.*rest: true"):
        build_menu(ENTRIES, layout(broad, ServiceSpec("养老", ("退休与养老待遇",))))


def test_questions_become_short_speakable_phrases_and_long_ones_are_not_offered() -> None:
    assert spoken_question("社保卡进度一直停在“制卡中”，说明什么？能去领卡吗？") == "社保卡进度一直停在制卡中，说明什么"
    assert spoken_question("养老保险可以退保吗？") == "养老保险可以退保吗"
    assert spoken_question("非即时（批量）制卡一般要多长时间？") == "非即时制卡一般要多长时间"
    menu = build_menu(ENTRIES, layout(ServiceSpec("养老", ("退休与养老待遇",)), ServiceSpec("其他", rest=True),
                                      max_phrase_chars=6)).root
    # 退休年龄 and 养老金发放 in turn; 女职工几岁退休 (7 characters) is too long for this layout
    assert titles(menu.options[0]) == ["几岁退休", "养老金几号发"]  # type: ignore[arg-type]


def test_a_service_with_nothing_to_offer_is_left_out() -> None:
    menu = build_menu(ENTRIES, layout(ServiceSpec("工伤", ("工伤保险",)), ServiceSpec("其他", rest=True))).root
    assert titles(menu) == ["其他"]


@pytest.mark.parametrize(("text", "fix"), [
    ("main: [{title: a, categories: [x]}, {title: b, categories: [y]}, {title: c, rest: true}]\nmax_options: 2",
     "max_options is 2"),
    ("main: [{title: a}]", "give the service categories"),
    ("main: [{title: a, rest: true}, {title: b, rest: true}]", "only one service"),
    ("main: [{title: a, rest: true, self_service: {title: 挂失, payload: report}}]", "intent payload"),
    ("main: [{title: a, menu: [{title: b, rest: true}], categories: [x]}]", "not both"),
    ("max_options: 9\nmain: [{title: a, rest: true}]", "at most 8"),
])
def test_layout_mistakes_are_named(tmp_path: Path, text: str, fix: str) -> None:
    path = tmp_path / "menu.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MenuError, match=fix):
        load_layout(path)


# --- the real layout over the real knowledge base -------------------------------------------

@pytest.fixture(scope="module")
def real_menu(tmp_path_factory: pytest.TempPathFactory) -> Menu:
    missing = tmp_path_factory.mktemp("no-analytics") / "analytics.db"
    generated = load_menu(analytics_url=f"sqlite:///{missing}")
    assert generated.ranked_by == "content order" and "no analytics database" in generated.note
    assert not missing.exists(), "the ranking created an analytics database"
    return generated.root


def test_the_main_services_are_on_the_menu(real_menu: Menu) -> None:
    spoken = {option.title for _, option in walk(real_menu)}
    for service in ("社保卡挂失", "社保卡办理进度", "社保卡密码和解锁", "电子社保卡", "参保缴费和缴费记录",
                    "养老保险和退休", "失业保险", "医疗和生育保险", "其他业务"):
        assert service in spoken
    reach = {option.payload: keys for keys, option in walk(real_menu) if isinstance(option, SelfService)}
    assert reach == {"/report_card_loss": "111", "/query_card_progress": "121"}


def test_every_level_fits_a_phone_and_every_answer_is_the_entrys_voice_answer(real_menu: Menu) -> None:
    entries = {e.id: e for e in load_entries()}
    layout_ = load_layout()
    levels = [real_menu, *(o for _, o in walk(real_menu) if isinstance(o, Menu))]
    assert all(1 <= len(level.options) <= layout_.max_options for level in levels)
    answers = [o for _, o in walk(real_menu) if isinstance(o, Answer)]
    assert len(answers) >= 25
    for answer in answers:
        assert answer.voice_answer == entries[answer.entry_id].voice_answer
        assert len(answer.title) <= layout_.max_phrase_chars and "？" not in answer.title
    # under 社保卡挂失 only loss and unlock questions are offered
    loss = real_menu.options[0].options[0]  # type: ignore[union-attr]
    assert {entries[i].category for i in ids(loss)} <= {"社保卡/挂失", "社保卡/解挂"}  # type: ignore[arg-type]


def test_self_service_payloads_are_intents_of_the_bot() -> None:
    domain = yaml.safe_load((REPO / "domain.yml").read_text(encoding="utf-8"))
    raw = yaml.safe_load((REPO / "voice" / "ivr" / "menu.yml").read_text(encoding="utf-8"))

    def payloads(items: list[dict]) -> list[str]:
        found = []
        for item in items:
            found += payloads(item.get("menu") or [])
            if item.get("self_service"):
                found.append(item["self_service"]["payload"])
        return found

    assert payloads(raw["main"]) and all(p[1:] in domain["intents"] for p in payloads(raw["main"]))


# --- answer counts from the analytics store -------------------------------------------------

def test_counts_come_from_the_analytics_store_within_the_window(tmp_path: Path) -> None:
    from analytics.store import AnalyticsStore, KnowledgeAnswer

    url = f"sqlite:///{tmp_path / 'analytics.db'}"
    store = AnalyticsStore(url)
    now = dt.datetime.now()
    rows = [("card-0519", now - dt.timedelta(days=1))] * 40 + [("card-0501", now - dt.timedelta(days=2))] * 20 \
        + [("card-0502", now - dt.timedelta(days=200))] * 90  # outside the 90 days
    store.call(lambda s: s.add_all([
        KnowledgeAnswer(turn_id=i, session_id=f"s{i}", conversation_id=f"c{i}", at=at, entry_id=entry_id, band="confident")
        for i, (entry_id, at) in enumerate(rows)]))
    store.dispose()
    counts, note = answer_counts(90, url, now=now)
    assert counts == {"card-0519": 40, "card-0501": 20} and note.startswith("60 answers in 90 days")

    generated = load_menu(analytics_url=url)
    assert generated.ranked_by == "answer counts"
    loss = generated.root.options[0].options[0]  # type: ignore[union-attr]
    # the unlock question (counted 40 times) now comes before the content's first loss question (20)
    assert ids(loss)[:2] == ["card-0519", "card-0501"]  # type: ignore[arg-type]


def test_too_few_answers_keep_the_content_order(tmp_path: Path) -> None:
    from analytics.store import AnalyticsStore, KnowledgeAnswer

    url = f"sqlite:///{tmp_path / 'analytics.db'}"
    store = AnalyticsStore(url)
    store.call(lambda s: s.add(KnowledgeAnswer(turn_id=1, session_id="s", conversation_id="c", at=dt.datetime.now(),
                                               entry_id="card-0519", band="chosen")))
    store.dispose()
    generated = load_menu(analytics_url=url)
    assert generated.ranked_by == "content order" and "fewer than 50" in generated.note
