"""Compare the group outputs of two bids-ms runs: every TSV line and every JSON value.

Used to show that a refactor keeps every deterministic output identical:

    python .ci/diff_runs.py OUT_A OUT_B

Run the participant level once, copy its output folder to OUT_A and OUT_B, run the group level
of each version (same options, same ``--seed``) into one of them, then compare. JSON values that
differ only by the output folder's path or name (e.g. ``Cohort``, which defaults to the folder
name) are listed as such and not counted. Exits 1 when anything else differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _walk(x, y, where, names, out):
    if isinstance(x, dict) and isinstance(y, dict):
        for key in sorted(set(x) | set(y)):
            _walk(x.get(key), y.get(key), f"{where}/{key}", names, out)
    elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            _walk(u, v, f"{where}[{i}]", names, out)
    elif x != y:
        a_name, b_name = names
        same_but_path = (
            isinstance(x, str)
            and isinstance(y, str)
            and x.replace(a_name, "") == y.replace(b_name, "")
        )
        out.append((where, x, y, same_but_path))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    a, b = (Path(p).resolve() for p in args)
    files_a = {p.relative_to(a) for p in (a / "group").rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in (b / "group").rglob("*") if p.is_file()}
    n_diff = len(files_a ^ files_b)
    for rel in sorted(files_a ^ files_b):
        print(f"only in one run: {rel}")
    for rel in sorted(files_a & files_b):
        if rel.suffix not in (".tsv", ".json"):
            continue
        text_a, text_b = (a / rel).read_text(), (b / rel).read_text()
        if text_a == text_b:
            continue
        if rel.suffix == ".json":
            found: list = []
            _walk(json.loads(text_a), json.loads(text_b), "", (str(a), str(b)), found)
            counted: list = []
            for where, x, y, path_only in found:
                if path_only or (isinstance(x, str) and x == a.name and y == b.name):
                    print(f"{rel} {where}: differs only by the output folder")
                else:
                    counted.append(where)
                    print(f"{rel} {where}: {x!r:.80} != {y!r:.80}")
            n_diff += len(counted)
        else:
            lines_a, lines_b = text_a.splitlines(), text_b.splitlines()
            n = sum(u != v for u, v in zip(lines_a, lines_b, strict=False)) + abs(
                len(lines_a) - len(lines_b)
            )
            print(f"{rel}: {n} lines differ")
            n_diff += n
    print(f"{len(files_a & files_b)} files compared, {n_diff} differences")
    return 1 if n_diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
