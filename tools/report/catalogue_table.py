#!/usr/bin/env python3
"""The catalogue's results table: one line per row of SCENARIOS.md.

    python3 tools/report/catalogue_table.py --alone out/catalogue-alone [--together out/catalogue]

Reads each scenario's defect log and summary.json (written by scripts/catalogue.sh: every
scenario run alone for its frames/s, then all 32 in one process) and its truth.json, and
prints a Markdown table: row, scenario, method, samples, verdict accuracy against
truth.json, frames/s alone and p50 latency. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
CATALOGUE = os.path.join(HERE, "..", "..", "scenarios", "catalogue")
METHOD = {
    "patchcore": "PatchCore fitted on the box",
    "examples": "teach by example (k-NN on backbone embeddings)",
    "golden": "golden reference (registration + tolerance)",
    "measure": "calipers (sub-pixel edges, mm tolerances)",
    "segment": "segmentation",
    "detect": "detection + count rules",
    "ocr": "PP-OCRv4 + text rules",
    "classify": "classification",
    "anomaly": "anomaly model export",
}


def records(log):
    with open(log) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alone", required=True, help="folder with one output folder per scenario, each run alone")
    ap.add_argument("--together", help="the output folder of the one-process run, checked the same way")
    a = ap.parse_args()
    lines = [
        "| row | scenario | method (model) | samples | OK / NG expected | accuracy | frames/s | p50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    worst = 1.0
    for name in sorted(os.listdir(CATALOGUE)):
        if not name.endswith(".toml"):
            continue
        stem = name[:-5]
        with open(os.path.join(CATALOGUE, name), "rb") as f:
            table = tomllib.load(f)
        kind = table["head"]["kind"]
        model = os.path.splitext(os.path.basename(table["model"]["path"]))[0]
        source = os.path.normpath(os.path.join(CATALOGUE, table["source"]["path"]))
        with open(os.path.join(source, "truth.json")) as f:
            raw = json.load(f)
        # `frames` is read as `images`, verdicts in any case (as `lineside eval` reads them).
        truth = {k: {"verdict": v["verdict"].upper()} for k, v in (raw.get("images") or raw["frames"]).items()}
        accuracies = []
        for base in filter(None, [a.alone, a.together]):
            out = os.path.join(base, stem)
            got = {r["item"]: r["verdict"] for r in records(os.path.join(out, "defects.jsonl"))}
            right = sum(1 for item, t in truth.items() if got.get(item) == t["verdict"])
            accuracies.append(right / len(truth))
        with open(os.path.join(a.alone, stem, "summary.json")) as f:
            summary = json.load(f)
        acc = min(accuracies)
        worst = min(worst, acc)
        ok = sum(1 for t in truth.values() if t["verdict"] == "OK")
        lines.append(
            f"| {int(stem[:2])} | [{stem}]({stem}.md) | {METHOD.get(kind, kind)} (`{model}`) | {len(truth)} | "
            f"{ok} / {len(truth) - ok} | {acc * 100:.1f}% | {summary['fps']:.1f} | {summary['latency_ms']['p50']:.1f} |"
        )
    print("\n".join(lines))
    print(f"\nlowest accuracy: {worst * 100:.1f}%", file=sys.stderr)
    return 0 if worst >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
