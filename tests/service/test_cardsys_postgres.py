"""The SQL card system against the local PostgreSQL: the whole adapter contract, concurrency and constraints.

Each run creates a throwaway database and drops it afterwards. Without a reachable server the tests
are skipped, except in CI (CI=true), where that is a failure. CARDSYS_TEST_POSTGRES_URL points at a
database the test may connect to in order to create and drop its own (default: local trust auth).
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from cardsys.adapter import SqlCardSystem
from cardsys.idnumber import is_valid_id
from cardsys.models import AuditEntry, Card, Citizen, SourceFailure
from cardsys.seed import DEMO_CITIZENS, seed
from cardsys.store import CardStore
from tests.postgres import scratch_database
from tests.unit.test_cardsys_adapter import CardSystemContract, card_states, sent_code

psycopg = pytest.importorskip("psycopg")
ADMIN_URL = os.environ.get("CARDSYS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A fresh, empty database for this module, dropped at the end."""
    yield from scratch_database(ADMIN_URL, "cardsys_test", "CARDSYS_TEST_POSTGRES_URL")


class TestPostgres(CardSystemContract):
    """The adapter contract (tests/unit/test_cardsys_adapter.py) against PostgreSQL."""

    @pytest.fixture
    def store(self, database_url: str) -> Iterator[CardStore]:
        store = CardStore(database_url)
        store.clear()
        yield store
        store.close()

    def test_it_really_is_postgresql(self, store: CardStore) -> None:
        with store.session() as s:
            assert s.execute(text("select version()")).scalar_one().startswith("PostgreSQL")

    def test_simultaneous_loss_reports_change_the_card_exactly_once(self, cards: SqlCardSystem, store: CardStore) -> None:
        # eight verifications of the same citizen (eight conversations), each with its own code, at once
        handles = [self.login(cards, conversation=f"c{i}") for i in range(8)]
        codes = []
        for citizen in handles:
            assert cards.send_change_code(citizen).ok
            codes.append(sent_code(cards.sms))
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda pair: cards.report_temporary_loss(*pair), zip(handles, codes, strict=True)))
        assert Counter(r.code for r in results) == {"reported": 1, "already_reported": 7}
        assert len({r.reported_at for r in results}) == 1
        assert card_states(store, DEMO_CITIZENS[0].id_number) == ["临时挂失"]

    def test_simultaneous_guesses_cannot_exceed_the_conversations_limit(self, cards: SqlCardSystem, store: CardStore) -> None:
        # eight wrong guesses of the phone's last four digits sent at once in one conversation
        guesses = [f"{n:04d}" for n in range(8)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(lambda g: cards.verify(DEMO_CITIZENS[0].id_number, DEMO_CITIZENS[0].name, g,
                                                         channel="web", conversation_id="burst").code, guesses))
        # exactly max_failures (3) were compared; the others were refused before any comparison
        assert Counter(codes) == {"mismatch": 2, "locked": 6}, codes
        with store.session() as s:
            compared = s.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.conversation_id == "burst", AuditEntry.outcome == "mismatch"))
        assert compared == 3

    def test_simultaneous_guesses_from_one_source_cannot_exceed_its_limit(self, cards: SqlCardSystem, store: CardStore) -> None:
        # thirty wrong guesses at once from one address, each in its own conversation, over three citizens
        def guess(i: int) -> str:
            person = DEMO_CITIZENS[i % 3]
            return cards.verify(person.id_number, person.name, "0000", channel="web", conversation_id=f"src-{i}",
                                source="web:203.0.113.9").code
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(guess, range(30)))
        # exactly max_failures_per_source (20) were compared; the rest waited
        assert Counter(codes) == {"mismatch": 20, "slow_down": 10}, codes
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(SourceFailure)) == 20

    def test_the_database_refuses_unknown_card_states(self, cards: SqlCardSystem, store: CardStore) -> None:
        with pytest.raises(IntegrityError), store.session() as s:
            card = s.scalars(select(Card)).first()
            card.status = "丢了"

    def test_seed_works_on_postgresql(self, store: CardStore) -> None:
        report = seed(store, count=40)
        assert (report.created, report.citizens) == (43, 43)
        assert seed(store, count=40).created == 0
        with store.session() as s:
            assert all(is_valid_id(i) for i in s.scalars(select(Citizen.id_number)))
        assert all(report.by_status.values())
