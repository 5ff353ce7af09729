"""Merge the written questions and their labels into the realistic evaluation set (one-off, kept for provenance).

    python scripts/eval/assemble.py

Reads knowledge/evalset/raw/*.yml (questions written from citizens' situations by writers who never
read our entries) and knowledge/evalset/labels/*.yml (acceptable entry ids, labelled afterwards by
others who read the answers), and writes knowledge/evalset/citizen.yml (business questions) and
knowledge/evalset/routing.yml (out of scope, hand-off, card transaction, social). Each item gets a
half: within each source file, items ordered by the sha1 of their text alternate tune / test, so
both halves cover every area alike. Nothing is ever tuned on the test half.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2] / "knowledge" / "evalset"


def _halves(texts: list[str]) -> dict[str, str]:
    order = sorted(texts, key=lambda t: hashlib.sha1(t.encode("utf-8")).hexdigest())
    return {t: ("tune" if i % 2 == 0 else "test") for i, t in enumerate(order)}


def _dump(path: Path, header: str, items: list[dict]) -> None:
    body = yaml.safe_dump({"items": items}, allow_unicode=True, sort_keys=False, width=200)
    path.write_text(header + body, encoding="utf-8")


def main() -> None:
    labels: dict[str, list] = {}
    for f in sorted((ROOT / "labels").glob("*.yml")):
        if f.name == "second_pass.yml":
            continue
        for it in yaml.safe_load(f.read_text(encoding="utf-8"))["items"]:
            labels[it["text"]] = sorted(it.get("expected") or [])
    # second pass: entries a judge accepted among the system's first three that the labellers had not listed
    second = ROOT / "labels" / "second_pass.yml"
    if second.exists():
        for it in yaml.safe_load(second.read_text(encoding="utf-8"))["items"]:
            labels[it["text"]] = sorted(set(labels.get(it["text"], [])) | set(it["add"]))
    business = []
    for name in ("card", "pension_enrol_medical", "unemp_injury_other"):
        items = yaml.safe_load((ROOT / "raw" / f"{name}.yml").read_text(encoding="utf-8"))["items"]
        half = _halves([it["text"] for it in items])
        for it in items:
            if it["text"] not in labels:
                raise SystemExit(f"unlabelled: {it['text']}")
            business.append({"text": it["text"], "topic": it["topic"], "expected": labels[it["text"]],
                             "half": half[it["text"]]})
    routing = yaml.safe_load((ROOT / "raw" / "routing.yml").read_text(encoding="utf-8"))["items"]
    half = _halves([it["text"] for it in routing])
    routing = [{"text": it["text"], "route": it["route"], "note": it.get("note", ""), "half": half[it["text"]]}
               for it in routing]
    _dump(ROOT / "citizen.yml",
          "# Realistic citizen questions (business): written from citizens' situations by writers who never read\n"
          "# our entries; labelled afterwards with every entry whose answer helps (expected: [] = no entry does).\n"
          "# half: tune (fitting and calibration may use it) or test (never used for tuning). See README.md.\n",
          business)
    _dump(ROOT / "routing.yml",
          "# Realistic messages that must be routed elsewhere than a knowledge answer: out_of_scope, handoff,\n"
          "# card_transaction (act on MY card), social. Written like citizen.yml; half as there. See README.md.\n",
          routing)
    print(f"business {len(business)} (no entry: {sum(not b['expected'] for b in business)}), routing {len(routing)}")


if __name__ == "__main__":
    main()
