"""The answer policy: from a ranking of entries to what the citizen sees.

Bands, decided by a confidence estimated from the ranking (a logistic model on its features):
- confident: answer the first entry, and offer one or two related entries ("您可能还想问");
- clarify: the first entries differ in a way the citizen can decide (职工 or 城乡居民, 本人 or 家属,
  济南 or 外地) and the question does not say which: ask exactly that, one button per entry;
- unsure: the entries are related but none is clearly meant: up to three suggestions;
- none: nothing relevant: say so and offer a person; or, when the message is nearer to the bank of
  other 12345 matters than to anything of ours ("not ours"), say that it is another department's.

The confidence model and thresholds are fitted once, on the tuning half of the realistic citizen
set (knowledge/evalset), by `python -m knowledge.cli calibrate --write`, and shipped with the
content in knowledge/calibration.json. They are never refitted on the installing machine: a fit
is a step function of a few borderline questions, and refitting it on every machine made the same
commit answer differently on two CPUs (issue "CI fails on a fresh machine with another CPU").
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)
Band = Literal["confident", "clarify", "unsure", "none"]
CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration.json"

# Distinctions a citizen can make at once. Each side is a pattern over an entry's standard question
# and category; a side that the question itself already names is not asked about.
FACETS: tuple[tuple[str, str, str, str], ...] = (
    ("职工", r"职工|在职|单位", "城乡居民", r"城乡居民|居民|农村|新农合"),
    ("本人办理", r"本人|自己", "家属代办", r"家属|代办|代领|替|亲属|子女|父母|老人|孩子|去世"),
    ("在济南", r"济南|本市|市内|省内", "在外地", r"外地|异地|省外|跨省|外省"),
    ("实体社保卡", r"实体|社保卡(?!.*电子)", "电子社保卡", r"电子社保卡|电子卡"),
    ("灵活就业", r"灵活就业|个体", "单位职工", r"单位|职工"),
)


@dataclass
class Calibration:
    """Confidence model (logistic on ranking features) and band thresholds, fitted offline."""

    coef: tuple[float, ...] = (0.0,)
    intercept: float = 0.0
    confident_at: float = 0.9
    unsure_at: float = 0.3
    strict_at: float = 0.95  # a message NLU calls out_of_scope is answered only above this
    # "not ours": below the confident band, a message this much closer (cosine) to the bank of other matters
    # (knowledge/not_ours.yml) than to any social-security wording is another department's matter; None: off
    foreign_margin: float | None = None
    model_id: str = ""
    report: dict | None = field(default=None)

    def confidence(self, feats: np.ndarray) -> float:
        """P(the first entry answers the question)."""
        z = float(np.dot(self.coef, feats) + self.intercept)
        return float(1.0 / (1.0 + np.exp(-z)))

    def band(self, confidence: float, strict: bool = False) -> Band:
        """The band for a confidence, before the clarify check.

        ``strict``: the message was not recognised as a social-security question (NLU said
        out_of_scope), so only a sure answer is given; anything less is "none".
        """
        if confidence >= (max(self.strict_at, self.confident_at) if strict else self.confident_at):
            return "confident"
        if strict:
            return "none"
        if confidence >= self.unsure_at:
            return "unsure"
        return "none"

    def margin(self, confidence: float, strict: bool = False) -> float:
        """Distance to the nearest band boundary (how far numerics would have to move to change the band)."""
        bounds = (max(self.strict_at, self.confident_at),) if strict else (self.confident_at, self.unsure_at)
        return float(min(abs(confidence - b) for b in bounds))

    def save(self, mode: str, path: Path = CALIBRATION_FILE) -> None:
        """Write this mode's calibration into the JSON file (reviewed and committed with the content)."""
        try:
            allmodes = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            allmodes = {}
        d = asdict(self)
        d["coef"] = [round(c, 8) for c in d["coef"]]
        allmodes[mode] = d
        Path(path).write_text(json.dumps(allmodes, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, mode: str, path: Path = CALIBRATION_FILE) -> Calibration | None:
        """The shipped calibration for a retrieval mode, or None when there is none."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))[mode]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        d["coef"] = tuple(d.get("coef", (0.0,)))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Clarification:
    """A question back to the citizen: which of two sides they mean, one entry per side."""

    prompt: str
    options: tuple[tuple[str, str], ...]  # (side label, entry id)


def _side(text: str, pattern: str) -> bool:
    return re.search(pattern, text) is not None


def clarification(question: str, first: tuple[str, str], second: tuple[str, str]) -> Clarification | None:
    """Ask back when the two best entries sit on the two sides of a facet the question leaves open.

    ``first`` and ``second`` are (entry id, standard question + category) of the two best entries.
    """
    (id1, t1), (id2, t2) = first, second
    for label_a, pat_a, label_b, pat_b in FACETS:
        if _side(question, pat_a) or _side(question, pat_b):
            continue  # the citizen already said which
        a1, b1, a2, b2 = _side(t1, pat_a), _side(t1, pat_b), _side(t2, pat_a), _side(t2, pat_b)
        if a1 and not b1 and b2 and not a2:
            return Clarification(f"请问您问的是{label_a}还是{label_b}的情况？", ((label_a, id1), (label_b, id2)))
        if b1 and not a1 and a2 and not b2:
            return Clarification(f"请问您问的是{label_a}还是{label_b}的情况？", ((label_a, id2), (label_b, id1)))
    return None


def load_calibration(mode: str, model_id: str, path: Path = CALIBRATION_FILE) -> Calibration:
    """The shipped calibration for the mode; warns when it was fitted for another model build."""
    cal = Calibration.load(mode, path)
    if cal is None:
        log.error("no shipped calibration for %s retrieval in %s: using uncalibrated defaults; run "
                  "`python -m knowledge.cli calibrate --write`", mode, path)
        return Calibration()
    if cal.model_id and cal.model_id != model_id:
        log.warning("knowledge/calibration.json was fitted for %s, the index uses %s: answers still work; "
                    "refit with `python -m knowledge.cli calibrate --write` after checking docs/bench_retrieval.md",
                    cal.model_id, model_id)
    return cal
