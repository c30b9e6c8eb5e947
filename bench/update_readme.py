#!/usr/bin/env python3
"""Splices bench/results/NAME.md into bench/README.md, between the lines
``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` (run by bench/run_all.sh).

    python bench/update_readme.py [NAME ...]     (default: every block found in the README)
"""

from __future__ import annotations

import os
import re
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(BENCH, "README.md")
BLOCK = re.compile(
    r"(<!-- results:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S
)


def main(argv: list[str]) -> int:
    with open(README, encoding="utf-8") as f:
        text = f.read()
    wanted = set(argv)
    done = []

    def replace(m: re.Match) -> str:
        name = m.group("name")
        md = os.path.join(BENCH, "results", name + ".md")
        if (wanted and name not in wanted) or not os.path.exists(md):
            return m.group(0)
        with open(md, encoding="utf-8") as f:
            table = f.read().strip()
        done.append(name)
        return m.group(1) + table + "\n" + m.group(4)

    text = BLOCK.sub(replace, text)
    with open(README, "w", encoding="utf-8") as f:
        f.write(text)
    print("updated: %s" % (", ".join(done) or "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
