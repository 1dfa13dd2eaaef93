#!/usr/bin/env python3
"""Writes the "5 MP frames" section of models/fitted/<set>.md from the JSON that
scripts/eval-frames.sh leaves in out/eval/<set>-frames.{fit.json,json} (replacing the
section if it is there).

    python3 tools/datasets/frame_card.py out/eval fabric metal
"""
import json
import os
import re
import sys

# Where the figures were measured: the caller says (the machine, its load, the build).
MACHINE = os.environ.get("LINESIDE_CARD_MACHINE", "2-core development machine, release binary")

HEAD = "## 5 MP frames (tiled, calibrated for the frame)"
src, sets = sys.argv[1], sys.argv[2:]
pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"
f4 = lambda v: "-" if v is None else f"{v:.4f}"
for s in sets:
    fit = json.load(open(os.path.join(src, f"{s}-frames.fit.json")))
    ev = json.load(open(os.path.join(src, f"{s}-frames.json")))
    meta = json.load(open(os.path.join("data/frames", s, "dataset.json")))
    # One line, and the f32 0.01 of older fits printed as 0.01.
    method = re.sub(r"0\.0099999+\d*", "0.01", " ".join(fit["calibration"].split()))
    goods = [i["score"] for i in ev["images"] if i["kind"] == "good"]
    bads = [i["score"] for i in ev["images"] if i["kind"] != "good"]
    lines = [
        HEAD,
        "",
        f"Scenario `scenarios/fitted/{s}-frames.toml` (tile 256 px = model input, overlap 32: "
        f"{fit['frame_tiles']} tiles per 2592x1944 frame), artifact `models/fitted/{s}-frames.lspc`; "
        f"data `data/frames/{s}` ({meta['counts']}, generator `tools/datasets/make_frame_sets.py`, "
        f"data hash `{meta['sha256_of_file_hashes'][:16]}`); made by `scripts/eval-frames.sh {s}`.",
        "",
        f"- Fit: {fit['train_images']} good frames fitted ({fit['training_tiles']} tiles drawn, "
        f"{fit['patches']} patches → bank {fit['bank_rows']} x {fit['dim']}), {fit['holdout_images']} frames held out.",
        f"- Calibration: {method}.",
        f"- Good-frame scores (normalised, threshold 0.5): largest {max(goods):.3f}, median {sorted(goods)[len(goods) // 2]:.3f}; "
        f"smallest defect-frame score {min(bads):.3f}.",
        f"- Thresholds (raw distance): image {fit['image_threshold']:.4f}, pixel {fit['pixel_threshold']:.4f}.",
        f"- Fit time: features {fit['seconds']['features']:.1f} s, coreset {fit['seconds']['coreset']:.1f} s, "
        f"calibration {fit['seconds']['calibration']:.1f} s, total {fit['seconds']['total']:.1f} s "
        f"({MACHINE}).",
        "",
        f"`lineside eval scenarios/fitted/{s}-frames.toml --data {ev['data']}` (threshold {ev['threshold']}):",
        "",
        f"- **False rejects: {ev['false_rejects']} of {ev['good_images']} good frames ({pct(ev['false_reject_rate'])})**.",
        f"- NG frames without a named defect: {ev['ng_without_defects']}.",
        "",
        f"| defect size ({ev['size_unit']}) | defects | found | rate |",
        "|---|---|---|---|",
    ]
    for d in ev["detection_by_size"]:
        rng = f"[{d['min']}, {d['max']})" if d["max"] is not None else f">= {d['min']}"
        lines.append(f"| {rng} | {d['defects']} | {d['found']} | {pct(d['rate'])} |")
    lines += [
        "",
        "| defect type | images | defective | image AUROC | pixel AUROC | AUPRO@0.3 | TP | FP | TN | FN |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, g in list(ev["per_type"].items()) + [("**all**", ev["overall"])]:
        c = g["confusion"]
        lines.append(
            f"| {k} | {g['images']} | {g['defective']} | {f4(g['image_auroc'])} | {f4(g['pixel_auroc'])} | "
            f"{f4(g['aupro'])} | {c['tp']} | {c['fp']} | {c['tn']} | {c['fn']} |"
        )
    lines += [
        "",
        f"Found = NG with a reported region overlapping the mask. Pixel metrics on every "
        f"{ev['pixel_stride']}th map pixel. Mean {ev['mean_ms_per_image'] / 1000:.2f} s per frame "
        f"({fit['frame_tiles']} tiles: preprocess + backbone + kNN + map; {MACHINE}).",
        "",
    ]
    card = os.path.join("models/fitted", f"{s}.md")
    text = open(card).read()
    if HEAD in text:
        text = text[: text.index(HEAD)].rstrip("\n") + "\n"
    with open(card, "w") as f:
        f.write(text.rstrip("\n") + "\n\n" + "\n".join(lines))
    print(f"wrote {card}")
