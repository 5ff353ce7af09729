"""The running test stack's processes (scripts/run.sh --detach wrote their pids to $RUN_DIR/pids): find one by
its command line, and start a killed one again exactly as it ran (same command, environment and directory)."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pids_file() -> Path:
    return ROOT / os.environ.get("RUN_DIR", "var/test") / "pids"


@dataclass(frozen=True)
class Service:
    """A process of the stack, with what it takes to start it again."""

    pid: int
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: str

    @classmethod
    def find(cls, *words: str) -> Service:
        """The stack's process whose command line holds every word (e.g. "actions.server"; "rasa", "run")."""
        for line in pids_file().read_text().split():
            try:
                argv = tuple(Path(f"/proc/{line}/cmdline").read_bytes().decode().split("\0")[:-1])
                raw_env = Path(f"/proc/{line}/environ").read_bytes().decode(errors="replace").split("\0")
                cwd = os.readlink(f"/proc/{line}/cwd")
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if all(any(word in arg for arg in argv) for word in words):
                env = dict(item.split("=", 1) for item in raw_env if "=" in item)
                return cls(int(line), argv, env, cwd)
        raise LookupError(f"no process of the test stack runs {' '.join(words)} (see {pids_file()})")

    def restart(self, log: Path) -> Service:
        """Start the (killed) process again; the pids file names the new one so scripts/stop.sh stops it."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(list(self.argv), env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        pids = pids_file().read_text().split()
        pids_file().write_text("\n".join(str(proc.pid) if p == str(self.pid) else p for p in pids) + "\n")
        return Service(proc.pid, self.argv, self.env, self.cwd)
