"""Synthetic card-system data for development and tests: `python -m cardsys.seed [--count 300] [--reset]`.

Never real people: every ID number uses an area code 370190–370199, which GB/T 2260 assigns to
no county (Jinan's counties are 370102–370126 and 370171), so no generated number can belong to
anyone; names are random combinations and phones are drawn from 199-0531-xxxx and never texted
(the development SMS gateway only writes to a log). Deterministic for a given --seed, idempotent:
running again adds only what is missing.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select

from cardsys.idnumber import compose_id
from cardsys.models import CARD_STATES, AuditEntry, Card, CardState, Citizen, utcnow
from cardsys.settings import load_settings, redact_url
from cardsys.store import CardStore
from common.settings import is_production

S = CardState
AREA_CODES = tuple(f"3701{n}" for n in range(90, 100))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂华建国志文玉兰红梅海燕鹏辉晨宇浩然思远佳怡欣悦子涵梓萱一诺雨桐嘉琪俊杰晓东立新庆春秋实永胜凤琴淑珍德福"
BANKS = ("中国工商银行", "中国农业银行", "中国银行", "中国建设银行", "交通银行", "中国邮政储蓄银行", "齐鲁银行", "济南农商银行")
DISTRICTS = ("历下区", "市中区", "槐荫区", "天桥区", "历城区", "长清区", "章丘区", "济阳区", "莱芜区", "钢城区", "平阴县", "商河县")


@dataclass(frozen=True)
class PlannedCard:
    """A card to create, with dates as offsets in days before the seeding day."""

    status: str
    bank: str
    outlet: str
    applied_days_ago: int


@dataclass(frozen=True)
class Person:
    """A synthetic citizen and the cards to create for them (oldest first)."""

    name: str
    id_number: str
    phone: str
    cards: tuple[PlannedCard, ...] = field(default_factory=tuple)

    @property
    def status(self) -> str:
        """Status of the newest card."""
        return self.cards[-1].status if self.cards else ""


DEMO_CITIZENS: tuple[Person, ...] = (
    Person("张示范", compose_id("370190", dt.date(1985, 3, 15), 1), "19905316688",
           (PlannedCard(S.ACTIVE.value, "中国工商银行", "历下区中国工商银行社保卡服务网点", 900),)),
    Person("李演示", compose_id("370190", dt.date(1992, 7, 8), 2), "19905312468",
           (PlannedCard(S.MAKING.value, "中国建设银行", "市中区中国建设银行社保卡服务网点", 10),)),
    Person("王样例", compose_id("370190", dt.date(1978, 1, 11), 3), "19905313579",
           (PlannedCard(S.READY.value, "齐鲁银行", "槐荫区齐鲁银行社保卡服务网点", 35),)),
)

# days since application, by status of the newest card
_AGE = {S.APPLIED.value: (1, 5), S.MAKING.value: (5, 25), S.SHIPPED.value: (20, 35), S.READY.value: (25, 90),
        S.COLLECTED.value: (30, 400), S.ACTIVE.value: (60, 3000), S.TEMP_LOSS.value: (60, 3000),
        S.FORMAL_LOSS.value: (60, 3000), S.CANCELLED.value: (400, 3600), S.LOCKED.value: (60, 3000)}


def _card(rng: random.Random, status: str, older_than: int = 0) -> PlannedCard:
    bank = rng.choice(BANKS)
    low, high = _AGE[status]
    return PlannedCard(status, bank, f"{rng.choice(DISTRICTS)}{bank}社保卡服务网点", rng.randint(max(low, older_than + 1), max(high, older_than + 2)))


def synthetic_people(count: int, seed: int = 20240601) -> list[Person]:
    """`count` synthetic citizens; the first n are the same for any count ≥ n. Every card status occurs when count ≥ 10."""
    used = {p.id_number for p in DEMO_CITIZENS}
    people: list[Person] = []
    for i in range(count):
        rng = random.Random(f"{seed}:{i}")
        while True:
            born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randint(0, 60 * 365))
            id_number = compose_id(rng.choice(AREA_CODES), born, rng.randint(0, 999))
            if id_number not in used:
                used.add(id_number)
                break
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
        status = CARD_STATES[i % len(CARD_STATES)]
        newest = _card(rng, status)
        cards: tuple[PlannedCard, ...] = (newest,)
        if status == S.MAKING.value and rng.random() < 0.3:  # a replacement after a formal loss
            cards = (_card(rng, S.FORMAL_LOSS.value, newest.applied_days_ago), newest)
        elif status == S.ACTIVE.value and rng.random() < 0.3:  # a renewal: the old card was cancelled
            cards = (_card(rng, S.CANCELLED.value, newest.applied_days_ago), newest)
        people.append(Person(name, id_number, f"1990531{rng.randint(0, 9999):04d}", cards))
    return people


def _dates(card: PlannedCard, today: dt.datetime, rng: random.Random) -> dict[str, object]:
    applied = today - dt.timedelta(days=card.applied_days_ago, hours=rng.randint(0, 8))
    out: dict[str, object] = {"applied_at": applied}
    if card.status in (S.APPLIED.value, S.MAKING.value):
        return out
    made = applied + dt.timedelta(days=min(15, card.applied_days_ago - 1 if card.applied_days_ago > 1 else 0))
    out["made_at"] = made
    out["shipped_at"] = made + dt.timedelta(days=2)
    if card.status in (S.SHIPPED.value, S.READY.value):
        return out
    collected = made + dt.timedelta(days=min(7, max(0, (today - made).days - 1)))
    out["collected_at"] = collected
    out["expires_at"] = (collected + dt.timedelta(days=3652)).date()
    if card.status == S.TEMP_LOSS.value:
        out["loss_reported_at"] = today - dt.timedelta(days=rng.randint(1, 5))
    elif card.status == S.FORMAL_LOSS.value:
        out["loss_reported_at"] = collected + dt.timedelta(days=max(1, (today - collected).days // 2))
    return out


@dataclass(frozen=True)
class SeedReport:
    """What the seed did."""

    created: int
    citizens: int
    by_status: dict[str, int]


def seed(store: CardStore, count: int = 300, reset: bool = False, seed: int = 20240601) -> SeedReport:
    """Create the demo citizens and `count` synthetic ones with cards; existing ones are left alone."""
    if reset:
        store.clear()
    today = utcnow().replace(minute=0, second=0, microsecond=0)
    created = 0
    with store.session() as s:
        known = set(s.scalars(select(Citizen.id_number)))
        numbers = set(s.scalars(select(Card.card_number)))
        for person in (*DEMO_CITIZENS, *synthetic_people(count, seed)):
            if person.id_number in known:
                continue
            rng = random.Random(person.id_number)
            citizen = Citizen(id_number=person.id_number, name=person.name, phone=person.phone, created_at=today)
            s.add(citizen)
            for card in person.cards:
                number = f"J{rng.randint(0, 10**8 - 1):08d}"
                while number in numbers:
                    number = f"J{rng.randint(0, 10**8 - 1):08d}"
                numbers.add(number)
                citizen.cards.append(Card(card_number=number, status=card.status, bank=card.bank, outlet=card.outlet,
                                          updated_at=today, **_dates(card, today, rng)))
            created += 1
        if created:
            s.add(AuditEntry(at=today, actor="seed", channel="cli", conversation_id="", action="seed", outcome="ok",
                             detail=f"新增{created}位合成测试居民"))
        s.flush()
        total = len(known) + created
        by_status = Counter(s.scalars(select(Card.status)))
    return SeedReport(created, total, {st: by_status.get(st, 0) for st in CARD_STATES})


def main(argv: list[str] | None = None) -> int:
    """Command line: seed the database named by CARDSYS_DATABASE_URL and print the demo citizens."""
    ap = argparse.ArgumentParser(prog="python -m cardsys.seed", description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=300, help="synthetic citizens besides the 3 demo ones (default 300)")
    ap.add_argument("--reset", action="store_true", help="delete all card-system rows first")
    ap.add_argument("--seed", type=int, default=20240601, help="random seed (default 20240601)")
    args = ap.parse_args(argv)
    if args.count < 0:
        ap.error("--count must be 0 or more")
    try:
        if is_production():  # the one APP_ENV rule (common/settings.py); an unknown APP_ENV is a SettingsError
            print("cardsys.seed writes synthetic citizens; run it against a development database, not with APP_ENV=production.",
                  file=sys.stderr)
            return 2
        settings = load_settings()
        store = CardStore(settings.database_url)
    except (ValueError, RuntimeError) as e:
        print(e, file=sys.stderr)
        return 2
    report = seed(store, args.count, args.reset, args.seed)
    store.close()
    print(f"cardsys seed: {report.citizens} citizens in {redact_url(settings.database_url)} ({report.created} new)")
    print("cards by status: " + ", ".join(f"{k} {v}" for k, v in report.by_status.items()))
    print("demo citizens (synthetic, not real people):")
    print(f"  {'姓名':<4}  {'身份证号':<18}  {'手机尾号':<4}  卡状态")
    for p in DEMO_CITIZENS:
        print(f"  {p.name:<4}  {p.id_number:<18}  {p.phone[-4:]:<8}  {p.status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
