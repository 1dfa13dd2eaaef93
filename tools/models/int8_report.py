#!/usr/bin/env python3
"""Reads what scripts/int8-report.sh ran (defect logs, `lineside eval` and `lineside bench`
JSON under WORK) and prints the float-versus-INT8 tables the model cards quote; writes
WORK/report.json.

    python3 tools/models/int8_report.py out/int8 13-woven-fabric 22-wood-veneer ...
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def log(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        out[r["item"]] = r
    return out


def auroc(pos: list, neg: list) -> float:
    """Probability that a defective part scores above a good one (ties count half)."""
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def classifier(work: Path) -> dict:
    f, q = log(work / "classifier-float/out/defects.jsonl"), log(work / "classifier-int8/out/defects.jsonl")
    items = sorted(set(f) & set(q))
    top = lambda r: r["classes"][0]["index"]
    photos = [i for i in items if "__" not in i]
    # Where the float model is decided: its top-1 leads its second by 0.1 or more.
    margin = lambda r: r["classes"][0]["score"] - (r["classes"][1]["score"] if len(r["classes"]) > 1 else 0.0)
    confident = [i for i in items if margin(f[i]) >= 0.1]
    agree = lambda xs: sum(top(f[i]) == top(q[i]) for i in xs) / max(1, len(xs))
    in_top5 = sum(top(f[i]) in [c["index"] for c in q[i]["classes"]] for i in items) / max(1, len(items))
    df, dq = log(work / "demo-float/out/defects.jsonl"), log(work / "demo-int8/out/defects.jsonl")
    return {
        "images": len(items),
        "top1_agreement": agree(items),
        "photos": len(photos),
        "top1_agreement_photos": agree(photos),
        "confident_images": len(confident),
        "top1_agreement_confident": agree(confident),
        "float_top1_in_int8_top5": in_top5,
        "demo_verdicts_equal": sum(df[i]["verdict"] == dq[i]["verdict"] for i in df),
        "demo_parts": len(df),
    }


def detector(work: Path) -> dict:
    out = {}
    for v in ("float", "int8"):
        e = json.loads((work / f"detector-{v}/eval.json").read_text())
        out[v] = {"map50": e["detection"]["map50"], "map50_95": e["detection"]["map50_95"], "images": e["images"]}
    return out


def patchcore(work: Path, rows: list) -> dict:
    out = {}
    for row in rows:
        truth = json.loads((ROOT / f"data/catalogue/{row}/test/truth.json").read_text())["images"]
        res = {}
        for v in ("float", "int8"):
            recs = log(work / f"patchcore-{row}-{v}/out/defects.jsonl")
            pos = [recs[i]["score"] for i, t in truth.items() if i in recs and t["verdict"] == "NG"]
            neg = [recs[i]["score"] for i, t in truth.items() if i in recs and t["verdict"] == "OK"]
            right = sum(recs[i]["verdict"] == t["verdict"] for i, t in truth.items() if i in recs)
            res[v] = {"image_auroc": auroc(pos, neg), "accuracy": right / max(1, len(truth)), "parts": len(truth)}
        out[row] = res
    return out


def bench(work: Path) -> dict:
    out = {}
    for name in ("demo", "detector"):
        for v in ("float", "int8"):
            p = work / f"bench-{name}-{v}.json"
            if p.exists():
                b = json.loads(p.read_text())
                out[f"{name}-{v}"] = {
                    "machine": b["machine"],
                    "rows": [
                        {
                            "cores": r["cores"],
                            "ort_alone_fps": r["ort_alone_fps"],
                            "pipeline_fps": r["pipeline_fps"],
                            "infer_p50_ms": r["infer_ms"]["p50"],
                        }
                        for r in b["rows"]
                    ],
                }
    return out


def main() -> int:
    work, rows = Path(sys.argv[1]), sys.argv[2:]
    rep = {
        "quantized": {
            m: json.loads((work / f"{m}.quantize.json").read_text())
            for m in ("classifier", "detector", "features")
            if (work / f"{m}.quantize.json").exists()
        },
        "classifier": classifier(work),
        "detector": detector(work),
        "patchcore": patchcore(work, rows),
        "bench": bench(work),
    }
    (work / "report.json").write_text(json.dumps(rep, indent=1))
    c = rep["classifier"]
    print("## Classifier (EfficientNet-Lite0), float vs INT8\n")
    print(f"- top-1 agreement: {c['top1_agreement']:.3f} on {c['images']} images "
          f"({c['top1_agreement_photos']:.3f} on the {c['photos']} demo photos, "
          f"{c['top1_agreement_confident']:.3f} on the {c['confident_images']} where the float model's top-1 leads its second by >= 0.1)")
    print(f"- float top-1 within INT8's top-5: {c['float_top1_in_int8_top5']:.3f}")
    print(f"- demo verdicts equal: {c['demo_verdicts_equal']} of {c['demo_parts']}\n")
    d = rep["detector"]
    print("## Detector (yolo-parts), 40 held-out renders\n")
    print("| model | AP50 | AP50-95 |\n|---|---|---|")
    for v in ("float", "int8"):
        print(f"| {v} | {d[v]['map50']:.4f} | {d[v]['map50_95']:.4f} |")
    print("\n## PatchCore on the INT8 backbone (fitted on each backbone)\n")
    print("| row | image AUROC float | INT8 | verdict accuracy float | INT8 |\n|---|---|---|---|---|")
    for row, r in rep["patchcore"].items():
        print(f"| {row} | {r['float']['image_auroc']:.4f} | {r['int8']['image_auroc']:.4f} | "
              f"{r['float']['accuracy']:.3f} | {r['int8']['accuracy']:.3f} |")
    print("\n## Speed (`lineside bench`, frames/s)\n")
    print("| scenario | cores | ORT alone float | INT8 | pipeline float | INT8 | infer p50 ms float | INT8 |")
    print("|---|---|---|---|---|---|---|---|")
    b = rep["bench"]
    for name in ("demo", "detector"):
        if f"{name}-float" not in b or f"{name}-int8" not in b:
            continue
        for rf, rq in zip(b[f"{name}-float"]["rows"], b[f"{name}-int8"]["rows"]):
            print(f"| {name} | {rf['cores']} | {rf['ort_alone_fps']:.1f} | {rq['ort_alone_fps']:.1f} | "
                  f"{rf['pipeline_fps']:.1f} | {rq['pipeline_fps']:.1f} | {rf['infer_p50_ms']:.2f} | {rq['infer_p50_ms']:.2f} |")
    if b:
        m = next(iter(b.values()))["machine"]
        print(f"\n(machine: {m['cpu']}, {m['cores']} cores, {m['arch']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
