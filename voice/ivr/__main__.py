"""`python -m voice.ivr`: print the keypad menu callers hear, generated as the gateway would (read-only).

    python -m voice.ivr            the tree: keys, titles, entry ids, and what ranked the questions
    python -m voice.ivr --prompts  also each level's spoken prompt
"""

from __future__ import annotations

import sys

from voice.ivr.menu import Answer, MenuError, SelfService, load_menu, walk
from voice.ivr.service import menu_prompt


def main(argv: list[str] | None = None) -> int:
    """Print the generated menu."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--prompts"]):
        print("usage: python -m voice.ivr [--prompts]", file=sys.stderr)
        return 2
    try:
        menu = load_menu()
    except MenuError as exc:
        print(f"keypad menu: {exc}", file=sys.stderr)
        return 2
    print(f"questions ranked by {menu.ranked_by} ({menu.note})")
    if args:
        print(f"  » {menu_prompt(menu.root, top=True)}")
    for keys, option in walk(menu.root):
        indent = "  " * len(keys)
        if isinstance(option, Answer):
            print(f"{indent}{keys[-1]} {option.title}  [{option.entry_id}]")
        elif isinstance(option, SelfService):
            print(f"{indent}{keys[-1]} {option.title}  → bot {option.payload}")
        else:
            print(f"{indent}{keys[-1]} {option.title}")
            if args:
                print(f"{indent}  » {menu_prompt(option, top=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
