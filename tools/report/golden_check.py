#!/usr/bin/env python3
"""Scores a golden catalogue row's defect log against the renderer's truth:

    .cache/venv/bin/python tools/report/golden_check.py 01-pcb-bare-board [...]

reads out/catalogue/<id>/defects.jsonl (from `lineside run scenarios/catalogue/<id>.toml`)
and data/catalogue/<id>/test/truth.json, and prints the verdict accuracy, the planted
defects found (a reported defect of the planted region class whose box overlaps the
planted box, 3 px margin) and the good parts rejected; every miss is listed. Exit 1 when
the accuracy is below 95%.
"""
import json
import sys


def overlaps(a, b, m=3.0):
    return (a[0] < b[0] + b[2] + m and b[0] < a[0] + a[2] + m
            and a[1] < b[1] + b[3] + m and b[1] < a[1] + a[3] + m)


def check(rid):
    truth = json.load(open(f"data/catalogue/{rid}/test/truth.json"))["images"]
    recs = {}
    for line in open(f"out/catalogue/{rid}/defects.jsonl"):
        r = json.loads(line)
        recs[r["item"]] = r
    right = planted = found = fp = 0
    misses = []
    for name, t in sorted(truth.items()):
        r = recs.get(name)
        v = r["verdict"] if r else "missing"
        right += v == t["verdict"]
        if t["verdict"] == "OK":
            if v != "OK":
                fp += 1
                misses.append(f"  {name}: good part rejected: {r and r['failed']}")
            continue
        for p in t.get("planted", []):
            planted += 1
            hit = v == "NG" and any(d["class"] == p["region"] and overlaps(d["box"], p["box"])
                                    for d in r["defects"])
            found += hit
            if not hit:
                misses.append(f"  {name}: {p['defect']} in {p['region']} at {p['box']} not found: "
                              f"{v} {r and r['defects']}")
    acc = right / len(truth)
    print(f"{rid}: verdict accuracy {acc:.4f} ({right}/{len(truth)}); planted defects found "
          f"{found}/{planted} in their region class; good parts rejected {fp}")
    for m in misses:
        print(m)
    return acc


if __name__ == "__main__":
    accs = [check(rid) for rid in sys.argv[1:]]
    sys.exit(0 if accs and min(accs) >= 0.95 else 1)
