"""Fail when an app function's cyclomatic complexity (radon cc) is above the ceiling.

Tables and small functions read better than long branches; this keeps it so. Migrations are
generated code and are left out.
"""

from __future__ import annotations

import sys
from pathlib import Path

from radon.complexity import cc_visit

CEILING = 15


def main(roots: list[str]) -> int:
    over = []
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for block in cc_visit(path.read_text(encoding="utf-8")):
                if block.complexity > CEILING:
                    over.append(f"{path}:{block.lineno} {block.fullname} {block.complexity}")
    for line in over:
        print(f"complexity above {CEILING}: {line}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
