"""`python -m voice.ivr`: print the keypad menu callers hear, generated as the gateway would (read-only).

With KB_DATABASE_URL, from the entries published in the desk (nothing is written: without published
entries there, from the content files).

    python -m voice.ivr            the tree: keys, titles, entry ids, and what ranked the questions
    python -m voice.ivr --prompts  also each level's spoken prompt
"""

from __future__ import annotations

import os
import sys

from voice.ivr.live import LiveMenu
from voice.ivr.menu import Answer, MenuError, SelfService, walk
from voice.ivr.service import menu_prompt
from voice.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    """Print the generated menu."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--prompts"]):
        print("usage: python -m voice.ivr [--prompts]", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env({**os.environ, "VOICE_HANDOFF": "local"})  # only KB_* matter here
        menu = LiveMenu(settings, seed=False).load()
    except (SettingsError, MenuError) as exc:
        print(f"keypad menu: {exc}", file=sys.stderr)
        return 2
    print(f"from the {menu.content}; questions ranked by {menu.ranked_by} ({menu.note})")
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
