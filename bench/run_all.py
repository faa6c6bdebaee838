"""Run every benchmark script in bench/ in turn (`make bench`); `--smoke` runs each one briefly.

Each script prints its own figures; this runner only sequences them and fails if one fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts() -> list[Path]:
    return sorted(p for p in HERE.glob("p*_*.py")) + sorted(p for p in HERE.glob("store_*.py"))


def main(argv: list[str]) -> int:
    smoke = "--smoke" in argv
    failed = []
    for script in scripts():
        print(f"== {script.name}{' (smoke)' if smoke else ''}", flush=True)
        done = subprocess.run([sys.executable, str(script), *(["--smoke"] if smoke else [])])
        if done.returncode != 0:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
