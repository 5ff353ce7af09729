"""Benchmark of the knowledge editor's scale targets (issue 16, item 4; figures into docs/knowledge_desk.md).

Prints, in one run on this machine:
- re-index of the full content from an empty embedding cache, and with a warm cache after one entry changed;
- one entry's change live: from a supervisor's publication in the database to the action server's index
  answering with it (KbService polling every KB_WATCH_SECONDS, as deployed);
- the desk's save check (validation + nearest entries) and entry list at today's size (and at 1,400 entries when it is smaller:
  (the content repeated with new ids and questions, so the work per save is that of the hotline's size).

Usage: `. scripts/env.sh && .venv/svc/bin/python scripts/bench_kb_desk.py [--skip-cold]`
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.orm import sessionmaker  # noqa: E402

from actions.kb_service import KbService  # noqa: E402
from actions.settings import load_settings  # noqa: E402
from common.database import create_sql_engine  # noqa: E402
from knowledge import editorial as ed  # noqa: E402
from knowledge.embedding import embedder_from_env  # noqa: E402
from knowledge.retriever import KnowledgeBase  # noqa: E402
from knowledge.schema import CONTENT_DIR, KbEntry, load_entries  # noqa: E402


def reindex(cache: Path) -> tuple[float, int, int]:
    embedder = embedder_from_env()
    t0 = time.perf_counter()
    kb = KnowledgeBase.from_content(CONTENT_DIR, embedder, cache)
    return time.perf_counter() - t0, len(kb.views), kb.embedded_now


def change_live(tmp: Path, cache: Path) -> float:
    """Seconds from a publication to the running index answering with it."""
    content = tmp / "content"
    shutil.copytree(CONTENT_DIR, content)
    url = f"sqlite:///{tmp}/webapp.db"
    service = KbService(replace(load_settings({}), kb_content_dir=content, kb_cache_dir=cache,
                                kb_database_url=url, kb_watch_seconds=5.0))
    assert service.get(timeout=600) is not None
    sessions = sessionmaker(create_sql_engine(url))
    marker = f"（基准测试 {time.time():.0f}）"
    with sessions.begin() as s:
        data = ed.detail(s, "card-0001")["published"]
        saved = ed.propose(s, "card-0001", ed.detail(s, "card-0001")["entry"]["head"],
                           {**data, "answer": data["answer"] + marker}, "bench", reviewed_by="bench")
        ed.publish(s, saved.revision["rev"], "bench")
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 300:
        kb = service.get()  # what an action does on every question: it also runs the periodic check
        if kb.by_id["card-0001"].answer.endswith(marker):
            return time.perf_counter() - t0
        time.sleep(0.2)
    raise SystemExit("the change did not go live within 300 s")


def grown(entries: list[KbEntry], size: int) -> list[KbEntry]:
    """The content repeated with new ids and distinct questions until `size` entries."""
    out = list(entries)
    copy = 0
    while len(out) < size:
        copy += 1
        for e in entries:
            if len(out) >= size:
                break
            n = int(e.id.split("-")[1]) + 5000 * copy
            out.append(replace(e, id=f"{e.id.split('-')[0]}-{n:04d}", question=f"{e.question}（情形{copy}）",
                               paraphrases=tuple(f"{p} 情况{copy}" for p in e.paraphrases)))
    return out


def desk_costs(tmp: Path, entries: list[KbEntry]) -> tuple[float, float, float]:
    """(seed s, save check ms p50, list ms p50) of a database holding `entries`."""
    engine = create_sql_engine(f"sqlite:///{tmp}/desk{len(entries)}.db")
    ed.create_tables(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    t0 = time.perf_counter()
    with sessions.begin() as s:
        ed.sync_from_files(s, entries, "bench")
    seed = time.perf_counter() - t0
    checks, lists = [], []
    for e in entries[:40]:
        data = {**ed.data_of(e), "answer": e.answer + "（修改）"}
        with sessions.begin() as s:
            t0 = time.perf_counter()
            ed.check(s, data, e.id)
            checks.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            ed.listing(s, q=e.question[:4])
            lists.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return seed, statistics.median(checks), statistics.median(lists)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-cold", action="store_true", help="skip the re-index from an empty cache (~1.5 min)")
    args = ap.parse_args()
    entries = load_entries()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        # --skip-cold: the developer's warm cache (read, and extended by the changed entry only)
        cache = ROOT / "var" / "kb_cache" if args.skip_cold else tmp / "cache"
        if not args.skip_cold:
            secs, texts, embedded = reindex(cache)
            print(f"re-index, empty cache: {len(entries)} entries, {texts} texts, {embedded} embedded, {secs:.1f} s")
        secs, texts, embedded = reindex(cache)
        print(f"re-index, warm cache: {embedded} embedded, {secs:.1f} s")
        live = change_live(tmp, cache)
        print(f"one entry's change live (publish -> index answers it, KB_WATCH_SECONDS=5): {live:.1f} s")
        for size in sorted({len(entries), max(len(entries), 1400)}):  # today's content, and 1,400+ if it is smaller
            seed, check_ms, list_ms = desk_costs(tmp, grown(entries, size))
            print(f"desk at {size} entries: seed {seed:.1f} s, save check p50 {check_ms:.0f} ms, "
                  f"search list p50 {list_ms:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
