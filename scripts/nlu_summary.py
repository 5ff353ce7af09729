"""Summarise `rasa test nlu` results into docs/nlu_report.md and check the accuracy floor."""
from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path

# regression guard, not a target: the figure itself is reported in docs/nlu_report.md
MIN_ACCURACY = float(os.environ.get("NLU_MIN_ACCURACY", "0.80"))


def main(results: str, report: str) -> int:
    """Print and write the per-intent table; exit 1 when accuracy is below the floor."""
    rep = json.loads((Path(results) / "intent_report.json").read_text(encoding="utf-8"))
    acc = rep["accuracy"]
    rows = [(k, v) for k, v in rep.items() if isinstance(v, dict) and "support" in v and k not in
            ("macro avg", "weighted avg", "micro avg")]
    lines = ["# NLU accuracy on the held-out test set", "",
             f"Produced by `make nlu-report` (scripts/nlu_report.sh) on {date.today()}: the trained model on "
             "`tests/nlu/nlu_holdout.yml`, examples written separately from the training data.", "",
             f"**Intent accuracy: {acc:.3f}** (macro F1 {rep['macro avg']['f1-score']:.3f}, "
             f"{int(rep['macro avg']['support'])} examples)", "",
             "| intent | precision | recall | F1 | examples |", "|---|---|---|---|---|"]
    for k, v in sorted(rows):
        lines.append(f"| {k} | {v['precision']:.2f} | {v['recall']:.2f} | {v['f1-score']:.2f} | {v['support']} |")
    ent = Path(results) / "DIETClassifier_report.json"
    if ent.exists():
        e = json.loads(ent.read_text(encoding="utf-8"))
        if "micro avg" in e:
            lines += ["", f"Entities (DIET): micro F1 {e['micro avg']['f1-score']:.3f}"]
    Path(report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"NLU held-out intent accuracy: {acc:.3f} (floor {MIN_ACCURACY}); report in {report}")
    return 0 if acc >= MIN_ACCURACY else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
