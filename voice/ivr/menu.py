"""The keypad menu, generated: services from voice/ivr/menu.yml, their questions from the knowledge base.

The layout file only groups the knowledge base's categories into services. Under each service the
options are its entries' standard questions turned into short speakable phrases, most answered
first (analytics store, voice/ivr/ranking.py), else in the order the content gives; each is answered
with the entry's `voice_answer`. The rule is documented in docs/voice.md ("Keypad mode").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from knowledge.schema import KbEntry

LAYOUT_PATH = Path(__file__).with_name("menu.yml")
_QUOTES = re.compile(r"[“”\"'‘’「」『』]")
_ASIDE = re.compile(r"（[^）]*）|\([^)]*\)")


class MenuError(ValueError):
    """The menu layout cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Answer:
    """An option answered with one knowledge entry's voice answer."""

    title: str  # the entry's standard question as a speakable phrase
    entry_id: str
    voice_answer: str


@dataclass(frozen=True)
class SelfService:
    """An option that starts a bot flow (card self-service) with an intent payload such as /report_card_loss."""

    title: str
    payload: str


@dataclass(frozen=True)
class Menu:
    """One level of the menu: a spoken title and its options, on keys 1..n in order."""

    title: str
    options: tuple[Menu | Answer | SelfService, ...]


@dataclass(frozen=True)
class GeneratedMenu:
    """The whole menu and what ranked its questions (for the log, /health and `python -m voice.ivr`)."""

    root: Menu
    ranked_by: str  # "answer counts" or "content order"
    note: str = ""  # where the counts came from, or why there were none
    content: str = "content files"  # where the entries came from: the files, or "publication <stamp>" (the desk's)


# --- the layout -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceSpec:
    """A service of the layout: the categories it answers (or the rest) and an optional self-service."""

    title: str
    categories: tuple[str, ...] = ()
    rest: bool = False
    self_service: SelfService | None = None


@dataclass(frozen=True)
class GroupSpec:
    """A level of the layout that holds services or further groups."""

    title: str
    items: tuple[GroupSpec | ServiceSpec, ...]


@dataclass(frozen=True)
class Layout:
    """voice/ivr/menu.yml, checked."""

    main: GroupSpec
    max_options: int = 4
    max_phrase_chars: int = 20
    window_days: int = 90
    min_answers: int = 50


def _positive(raw: dict[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MenuError(f"{where}: set {key} to a whole number of at least 1 (got {value!r}).")
    return value


def _item(raw: Any, max_options: int, where: str) -> GroupSpec | ServiceSpec:
    if not isinstance(raw, dict) or not str(raw.get("title") or "").strip():
        raise MenuError(f"{where}: every item needs a title.")
    title = str(raw["title"]).strip()
    where = f"{where} › {title}"
    if "menu" in raw:
        if "categories" in raw or "rest" in raw or "self_service" in raw:
            raise MenuError(f"{where}: an item has either a menu or categories/rest, not both.")
        return GroupSpec(title, _items(raw["menu"], max_options, where))
    categories = raw.get("categories") or []
    rest = raw.get("rest") is True
    if not isinstance(categories, list) or not all(isinstance(c, str) and c.strip() for c in categories):
        raise MenuError(f"{where}: categories must be a list of knowledge categories such as 社保卡/挂失.")
    if not categories and not rest:
        raise MenuError(f"{where}: give the service categories, or rest: true.")
    service = raw.get("self_service")
    self_service = None
    if service is not None:
        if (not isinstance(service, dict) or not str(service.get("title") or "").strip()
                or not str(service.get("payload") or "").startswith("/")):
            raise MenuError(f"{where}: self_service needs a title and an intent payload such as /report_card_loss.")
        self_service = SelfService(str(service["title"]).strip(), str(service["payload"]).strip())
    return ServiceSpec(title, tuple(c.strip().strip("/") for c in categories), rest, self_service)


def _items(raw: Any, max_options: int, where: str) -> tuple[GroupSpec | ServiceSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise MenuError(f"{where}: a menu must list its items.")
    if len(raw) > max_options:
        raise MenuError(f"{where}: {len(raw)} items, but max_options is {max_options}: group them one level deeper.")
    return tuple(_item(item, max_options, where) for item in raw)


def load_layout(path: Path = LAYOUT_PATH) -> Layout:
    """Read and check the layout file; MenuError names the fix."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MenuError(f"{path}: cannot read the keypad menu layout ({exc}).") from exc
    if not isinstance(raw, dict):
        raise MenuError(f"{path}: expected a mapping with a 'main' menu.")
    where = path.name
    max_options = _positive(raw, "max_options", 4, where)
    if max_options > 8:
        raise MenuError(f"{where}: max_options can be at most 8 (9, 0 and * are the fixed keys).")
    ranking = raw.get("ranking") or {}
    if not isinstance(ranking, dict):
        raise MenuError(f"{where}: ranking must be a mapping with window_days and min_answers.")
    layout = Layout(
        main=GroupSpec("主菜单", _items(raw.get("main"), max_options, where)),
        max_options=max_options,
        max_phrase_chars=_positive(raw, "max_phrase_chars", 20, where),
        window_days=_positive(ranking, "window_days", 90, f"{where} › ranking"),
        min_answers=_positive(ranking, "min_answers", 50, f"{where} › ranking"),
    )
    if sum(s.rest for s in services_of(layout.main)) > 1:
        raise MenuError(f"{where}: only one service can take the rest of the categories (rest: true).")
    return layout


def services_of(group: GroupSpec) -> list[ServiceSpec]:
    """The layout's services in menu order."""
    found: list[ServiceSpec] = []
    for item in group.items:
        found.extend(services_of(item) if isinstance(item, GroupSpec) else [item])
    return found


# --- from the knowledge base to the menu ----------------------------------------------------

def spoken_question(question: str) -> str:
    """A standard question as a menu phrase: its first sentence, without asides in brackets, quotes or "？"."""
    first = re.split(r"[？?]", question.strip(), maxsplit=1)[0]
    return _QUOTES.sub("", _ASIDE.sub("", first)).strip(" ，,。、")


def _matches(category: str, claimed: str) -> bool:
    return category == claimed or category.startswith(claimed + "/")


def _owner(entry: KbEntry, services: Sequence[ServiceSpec]) -> tuple[int, str] | None:
    """Which service answers the entry (the most specific category wins, else the rest) and its group there."""
    best: tuple[int, int, str] | None = None  # (length of the category, service index, category)
    for index, service in enumerate(services):
        for claimed in service.categories:
            if _matches(entry.category, claimed) and (best is None or len(claimed) > best[0]):
                best = (len(claimed), index, claimed)
    if best is not None:
        return best[1], best[2]
    rest = next((i for i, s in enumerate(services) if s.rest), None)
    return (rest, entry.category.split("/")[0]) if rest is not None else None


def _interleave(lists: Iterable[list[KbEntry]]) -> list[KbEntry]:
    """First of each list, then the second of each, and so on."""
    lists = [lst for lst in lists if lst]
    out: list[KbEntry] = []
    for i in range(max((len(lst) for lst in lists), default=0)):
        out.extend(lst[i] for lst in lists if i < len(lst))
    return out


def content_order(entries: Sequence[KbEntry]) -> list[KbEntry]:
    """A service's entries without answer counts: round-robin over its sub-topics in content order."""
    by_topic: dict[str, list[KbEntry]] = {}
    for entry in entries:
        by_topic.setdefault(entry.category, []).append(entry)
    return _interleave(by_topic.values())


def _ranked(groups: dict[str, list[KbEntry]], counts: Mapping[str, int]) -> list[KbEntry]:
    """Most answered first; ties (and entries never answered) in content order, the service's groups in turn."""
    fallback = _interleave(content_order(group) for group in groups.values())
    position = {entry.id: i for i, entry in enumerate(fallback)}
    return sorted(fallback, key=lambda e: (-counts.get(e.id, 0), position[e.id]))


def build_menu(entries: Sequence[KbEntry], layout: Layout, counts: Mapping[str, int] | None = None,
               note: str = "") -> GeneratedMenu:
    """The menu tree: the layout's groups, and under each service its top questions (MenuError when none is left)."""
    services = services_of(layout.main)
    # per service: its groups (a listed category, or a top-level category for the rest) in order
    grouped: list[dict[str, list[KbEntry]]] = [{c: [] for c in s.categories} for s in services]
    unclaimed: set[str] = set()
    for entry in entries:
        owner = _owner(entry, services)
        if owner is None:
            unclaimed.add(entry.category.split("/")[0])
        else:
            grouped[owner[0]].setdefault(owner[1], []).append(entry)
    if unclaimed:
        raise MenuError(f"No keypad service answers the categories {', '.join(sorted(unclaimed))}: "
                        "add them to a service in voice/ivr/menu.yml, or give one service rest: true.")

    def short(entry: KbEntry) -> bool:
        return 0 < len(spoken_question(entry.question)) <= layout.max_phrase_chars

    def service_menu(spec: ServiceSpec, groups: dict[str, list[KbEntry]]) -> Menu:
        options: list[Menu | Answer | SelfService] = [spec.self_service] if spec.self_service else []
        phrases: set[str] = set()
        offered = {name: [e for e in group if short(e)] for name, group in groups.items()}  # then ranked
        for entry in _ranked(offered, counts or {}):
            if len(options) == layout.max_options:
                break
            phrase = spoken_question(entry.question)
            if phrase not in phrases:
                phrases.add(phrase)
                options.append(Answer(phrase, entry.id, entry.voice_answer))
        return Menu(spec.title, tuple(options))

    service_menus = iter([service_menu(spec, grouped[i]) for i, spec in enumerate(services)])

    def level(group: GroupSpec) -> Menu:  # services_of's order: depth first, items in turn
        built = [level(item) if isinstance(item, GroupSpec) else next(service_menus) for item in group.items]
        return Menu(group.title, tuple(m for m in built if m.options))  # a service with nothing to offer is left out

    root = level(layout.main)
    if not root.options:
        raise MenuError("The keypad menu is empty: the knowledge base has no entries for its services.")
    return GeneratedMenu(root, "answer counts" if counts else "content order", note)


def load_menu(layout_path: Path = LAYOUT_PATH, content_dir: Path | None = None,
              analytics_url: str | None = None, entries: Sequence[KbEntry] | None = None,
              content: str = "content files") -> GeneratedMenu:
    """Read the layout, the knowledge content and the answer counts, and build the menu (blocking).

    `entries` given (the desk's published ones, voice/ivr/live.py): the menu is built from them instead of
    the content files, and `content` says where they came from.
    """
    from knowledge.schema import CONTENT_DIR, ContentError, load_entries
    from voice.ivr.ranking import answer_counts

    layout = load_layout(layout_path)
    if entries is None:
        try:
            entries = load_entries(content_dir or CONTENT_DIR)
        except ContentError as exc:
            raise MenuError(f"The knowledge content cannot be read for the keypad menu: {exc}") from exc
    counts, source = answer_counts(layout.window_days, analytics_url)
    total = sum(counts.values())
    if total >= layout.min_answers:
        menu = build_menu(entries, layout, counts, source)
    else:
        menu = build_menu(entries, layout, None, source + (f", fewer than {layout.min_answers}" if total else ""))
    return replace(menu, content=content)


def walk(menu: Menu, keys: str = "") -> Iterable[tuple[str, Menu | Answer | SelfService]]:
    """Every option under a menu with the keys that reach it ("1", "13", "132"…), depth first."""
    for index, option in enumerate(menu.options, start=1):
        path = f"{keys}{index}"
        yield path, option
        if isinstance(option, Menu):
            yield from walk(option, path)
