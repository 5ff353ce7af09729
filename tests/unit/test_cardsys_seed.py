"""Synthetic seed data: counts, valid and unassigned-area ID numbers, every status, determinism, idempotency, CLI."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cardsys.idnumber import is_valid_id
from cardsys.models import CARD_STATES, Card, Citizen
from cardsys.seed import DEMO_CITIZENS, main, seed, synthetic_people
from cardsys.store import CardStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CardStore]:
    store = CardStore(f"sqlite:///{tmp_path / 'cardsys.db'}")
    yield store
    store.close()


def test_seed_creates_the_demo_citizens_and_the_requested_count(store: CardStore) -> None:
    report = seed(store, count=50)
    assert (report.created, report.citizens) == (53, 53)
    with store.session() as s:
        citizens = list(s.scalars(select(Citizen)))
        statuses = Counter(s.scalars(select(Card.status)))
    assert len(citizens) == 53
    assert all(is_valid_id(c.id_number) for c in citizens)
    assert all(c.id_number[:4] == "3701" and c.id_number[4:6] >= "90" for c in citizens)  # unassigned 37019x
    assert all(len(c.phone) == 11 and c.phone.startswith("1990531") for c in citizens)
    assert set(statuses) == set(CARD_STATES)
    assert report.by_status == {state: statuses[state] for state in CARD_STATES}


def test_the_demo_citizens_have_the_documented_cards(store: CardStore) -> None:
    seed(store, count=0)
    with store.session() as s:
        found = {c.name: (c.id_number, c.phone[-4:], [card.status for card in c.cards]) for c in s.scalars(select(Citizen))}
    assert found == {p.name: (p.id_number, p.phone[-4:], [p.status]) for p in DEMO_CITIZENS}
    assert [p.status for p in DEMO_CITIZENS] == ["正常", "制卡中", "待领取"]


def test_seeding_is_deterministic_and_idempotent(store: CardStore) -> None:
    assert synthetic_people(20) == synthetic_people(30)[:20]
    assert synthetic_people(20, seed=1) != synthetic_people(20, seed=2)
    seed(store, count=20)
    assert seed(store, count=20).created == 0
    assert seed(store, count=25).created == 5
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Citizen)) == 28
    assert seed(store, count=10, reset=True).citizens == 13


def test_ids_are_unique_and_valid_for_a_few_hundred(store: CardStore) -> None:
    people = synthetic_people(400)
    ids = [p.id_number for p in people] + [p.id_number for p in DEMO_CITIZENS]
    assert len(set(ids)) == len(ids)
    assert all(is_valid_id(i) for i in ids)


def test_the_command_line_prints_the_demo_citizens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CARDSYS_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("APP_ENV", raising=False)
    assert main(["--count", "12"]) == 0
    out = capsys.readouterr().out
    assert "15 citizens" in out and "(15 new)" in out
    for p in DEMO_CITIZENS:
        assert p.name in out and p.id_number in out and p.phone[-4:] in out and p.status in out
    assert main(["--count", "12"]) == 0 and "(0 new)" in capsys.readouterr().out


def test_the_command_line_refuses_production(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    assert main([]) == 2
    assert "APP_ENV=production" in capsys.readouterr().err
