"""Load and validate knowledge entries from knowledge/content/*.yml (schema: knowledge/SCHEMA.md)."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CONTENT_DIR = Path(__file__).resolve().parent / "content"
ID_PATTERN = re.compile(r"^[a-z]+-\d{4}$")
URL_PATTERN = re.compile(r"https?://|www\.|\.gov\.cn|\.com\b", re.IGNORECASE)
MIN_PARAPHRASES = 5
MAX_VOICE_CHARS = 80
REQUIRED = ("id", "category", "question", "paraphrases", "answer", "voice_answer", "source", "reviewed", "local_review")


@dataclass(frozen=True)
class KbEntry:
    """One knowledge entry: a standard question, how citizens ask it, and the answers."""

    id: str
    category: str
    question: str
    paraphrases: tuple[str, ...]
    answer: str
    voice_answer: str
    source: str
    reviewed: str
    local_review: bool
    keywords: tuple[str, ...] = ()
    file: str = field(default="", compare=False)

    @property
    def views(self) -> tuple[str, ...]:
        """Texts that represent the entry in the index: the question first, then the paraphrases."""
        return (self.question, *self.paraphrases)


class ContentError(ValueError):
    """Raised when the content files cannot be read as knowledge entries."""


def content_files(content_dir: Path | str = CONTENT_DIR) -> list[Path]:
    """The YAML files of a content folder, in a stable order."""
    return sorted(Path(content_dir).glob("*.yml"))


def content_fingerprint(content_dir: Path | str = CONTENT_DIR) -> str:
    """sha256 over the content files' names and bytes: changes whenever the content changes."""
    h = hashlib.sha256()
    for f in content_files(content_dir):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _entry_from_raw(raw: dict, file: str) -> KbEntry:
    missing = [k for k in REQUIRED if k not in raw or raw[k] in (None, "", [])]
    if missing:
        raise ContentError(f"{file}: entry {raw.get('id', '?')} lacks {', '.join(missing)}")
    reviewed = raw["reviewed"]
    if isinstance(reviewed, (dt.date, dt.datetime)):
        reviewed = reviewed.isoformat()[:10]
    return KbEntry(
        id=str(raw["id"]),
        category=str(raw["category"]),
        question=str(raw["question"]).strip(),
        paraphrases=tuple(str(p).strip() for p in raw["paraphrases"]),
        answer=str(raw["answer"]).strip(),
        voice_answer=str(raw["voice_answer"]).strip(),
        source=str(raw["source"]).strip(),
        reviewed=str(reviewed),
        local_review=raw["local_review"] if isinstance(raw["local_review"], bool) else str(raw["local_review"]).lower() == "true",
        keywords=tuple(str(k) for k in raw.get("keywords") or ()),
        file=file,
    )


def load_entries(content_dir: Path | str = CONTENT_DIR) -> list[KbEntry]:
    """Every entry of every content file, in id order; raises ContentError on unreadable or incomplete data.

    Id order (the desk's order too): an area's entries together and its first entries first, whichever of the
    area's files holds them (card_family.yml sorts before card_service.yml, card-1001 after card-0617). What
    follows the content order (the keypad menu without answer counts, ties in a ranking) does not depend on
    how the entries are spread over files.
    """
    entries: list[KbEntry] = []
    for f in content_files(content_dir):
        try:
            doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ContentError(f"{f.name}: not valid YAML ({exc})") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
            raise ContentError(f"{f.name}: expected a mapping with an 'entries' list")
        for raw in doc["entries"]:
            if not isinstance(raw, dict):
                raise ContentError(f"{f.name}: every entry must be a mapping")
            entries.append(_entry_from_raw(raw, f.name))
    return sorted(entries, key=lambda e: e.id)


def char_bigrams(text: str) -> set[str]:
    """Character bigrams of the text without punctuation (for near-duplicate checks)."""
    t = re.sub(r"[\W_]+", "", text)
    return {t[i : i + 2] for i in range(len(t) - 1)} or {t}


def jaccard(a: set[str], b: set[str]) -> float:
    """Jaccard overlap of two sets."""
    return len(a & b) / len(a | b) if a | b else 0.0


def near_duplicate_questions(entries: list[KbEntry], threshold: float = 0.8) -> list[tuple[str, str, float]]:
    """Pairs of entries whose standard questions overlap so much that they probably ask the same thing."""
    grams = [(e.id, char_bigrams(e.question)) for e in entries]
    pairs = []
    for i, (id_a, ga) in enumerate(grams):
        for id_b, gb in grams[i + 1 :]:
            s = jaccard(ga, gb)
            if s >= threshold:
                pairs.append((id_a, id_b, round(s, 3)))
    return pairs


def validate(entries: list[KbEntry]) -> list[str]:
    """All problems found in the entries (empty when the content is valid)."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    questions: dict[str, str] = {}
    for e in entries:
        where = f"{e.file}:{e.id}"
        if not ID_PATTERN.match(e.id):
            problems.append(f"{where}: id must look like area-0001")
        if e.id in seen:
            problems.append(f"{where}: duplicate id (also in {seen[e.id]})")
        seen[e.id] = e.file
        if e.question in questions:
            problems.append(f"{where}: same standard question as {questions[e.question]}")
        questions[e.question] = e.id
        if len(e.paraphrases) < MIN_PARAPHRASES:
            problems.append(f"{where}: needs at least {MIN_PARAPHRASES} paraphrases, has {len(e.paraphrases)}")
        if len(set(e.paraphrases)) != len(e.paraphrases) or e.question in e.paraphrases:
            problems.append(f"{where}: paraphrases repeat each other or the question")
        if len(e.voice_answer) > MAX_VOICE_CHARS:
            problems.append(f"{where}: voice_answer has {len(e.voice_answer)} characters (max {MAX_VOICE_CHARS})")
        if URL_PATTERN.search(e.voice_answer):
            problems.append(f"{where}: voice_answer must not contain a URL")
        if "|" in e.voice_answer or re.search(r"(^|\n)\s*([-*•]|\d+[.、])\s", e.voice_answer):
            problems.append(f"{where}: voice_answer must not contain tables or list markers")
        try:
            dt.date.fromisoformat(e.reviewed)
        except ValueError:
            problems.append(f"{where}: reviewed must be a date YYYY-MM-DD")
        if not e.id.split("-")[0] or not e.category:
            problems.append(f"{where}: category missing")
    for a, b, s in near_duplicate_questions(entries):
        problems.append(f"near-duplicate standard questions: {a} ~ {b} (overlap {s})")
    return problems
