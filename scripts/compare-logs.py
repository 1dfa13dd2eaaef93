#!/usr/bin/env python3
"""Compares two lineside defect logs record by record, as tests/demo_logs.rs does.

    scripts/compare-logs.py A.jsonl B.jsonl [--ignore KEY ...] [--tolerance 1e-5]

`time` and `latency_ms` are always ignored (they differ from run to run); `--ignore` leaves
out more keys wherever they occur (e.g. `source` when the runs read the same images from two
checkouts, `sha256` for two fits of a PatchCore model). Strings, verdicts, booleans, nulls,
integers, boxes, quads and pixel areas (rounded in the log) must be equal exactly, and every
object and array must have the same keys and length; other numbers (scores, mm² areas) within
the tolerance, absolute or relative (ONNX Runtime may take other SIMD paths on another CPU).

Prints each difference (the first 50) and the largest numeric difference; exits 0 when the
logs match, 1 when they differ, 2 on a usage or file error. Plain Python 3, no packages.
"""

import argparse
import json
import sys

IGNORED = {"time", "latency_ms"}
# Rounded in the log (boxes to 0.1 px, areas to whole pixels): any change is real.
EXACT = {"box", "quad", "area_px"}


def is_float(v):
    return isinstance(v, float)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Comparison:
    def __init__(self, tolerance, ignored):
        self.tolerance = tolerance
        self.ignored = IGNORED | set(ignored)
        self.errors = []
        self.largest = (0.0, "")

    def compare(self, a, b, at):
        if isinstance(a, dict) and isinstance(b, dict):
            ka = [k for k in a if k not in self.ignored]
            kb = [k for k in b if k not in self.ignored]
            if sorted(ka) != sorted(kb):
                self.errors.append(f"{at}: keys {sorted(ka)} vs {sorted(kb)}")
                return
            for k in ka:
                if k in EXACT:
                    if a[k] != b[k]:
                        self.errors.append(f"{at}.{k}: {a[k]} vs {b[k]}")
                else:
                    self.compare(a[k], b[k], f"{at}.{k}")
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                self.errors.append(f"{at}: {len(a)} vs {len(b)} items")
                return
            for i, (x, y) in enumerate(zip(a, b)):
                self.compare(x, y, f"{at}[{i}]")
        elif is_number(a) and is_number(b) and (is_float(a) or is_float(b)):
            diff = abs(a - b)
            if diff > self.largest[0]:
                self.largest = (diff, f"{at} ({a} vs {b})")
            if diff > self.tolerance and diff > self.tolerance * max(abs(a), abs(b)):
                self.errors.append(f"{at}: {a} vs {b}")
        elif type(a) is not type(b) or a != b:
            self.errors.append(f"{at}: {json.dumps(a)} vs {json.dumps(b)}")


def read_log(path):
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not JSON: {e}") from e
    return records


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--ignore", action="append", default=[], metavar="KEY")
    ap.add_argument("--tolerance", type=float, default=1e-5)
    args = ap.parse_args()
    try:
        a, b = read_log(args.a), read_log(args.b)
    except (OSError, ValueError) as e:
        print(e, file=sys.stderr)
        return 2
    c = Comparison(args.tolerance, args.ignore)
    if len(a) != len(b):
        c.errors.append(f"{len(a)} vs {len(b)} records")
    for i, (x, y) in enumerate(zip(a, b)):
        item = y.get("item", "-") if isinstance(y, dict) else "-"
        c.compare(x, y, f"record {i} ({item})")
    for e in c.errors[:50]:
        print(e)
    if len(c.errors) > 50:
        print(f"... and {len(c.errors) - 50} more")
    diff, at = c.largest
    print(f"{min(len(a), len(b))} records compared; largest numeric difference {diff:e}"
          + (f" at {at}" if at else ""))
    if c.errors:
        print(f"DIFFERENT: {len(c.errors)} difference(s)")
        return 1
    print("same")
    return 0


if __name__ == "__main__":
    sys.exit(main())
