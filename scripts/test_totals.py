"""The totals of several pytest runs as one closing line: 'tests: N passed, N failed, N skipped'."""

import re
import sys
from pathlib import Path

COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?)\b")


def totals(logs: list[str]) -> dict[str, int]:
    found = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    for log in logs:
        lines = Path(log).read_text(errors="replace").splitlines()
        summary = next(
            (line for line in reversed(lines) if " in " in line and COUNT.search(line)), ""
        )
        for number, word in COUNT.findall(summary):
            found["error" if word.startswith("error") else word] += int(number)
    return found


if __name__ == "__main__":
    found = totals(sys.argv[1:])
    failed = found["failed"] + found["error"]
    print(f"tests: {found['passed']} passed, {failed} failed, {found['skipped']} skipped")
