#!/usr/bin/env python3
"""Build the anomalib PatchCore ONNX test fixture for lineside.

What it does (everything offline, fixed seeds):
  1. generates a tiny MVTec-style folder data set of 256x256 RGB textures with numpy
     (train/good, test/good, test/defect + ground_truth/defect masks) under --work;
  2. trains anomalib PatchCore (backbone resnet18, layers layer2+layer3, pre_trained=False,
     so nothing is downloaded; coreset ratio 0.1) for 1 epoch on the CPU;
  3. exports it with anomalib's own Engine.export(export_type=ONNX, input_size=(256, 256));
  4. copies the export to models/fixtures/anomalib_patchcore/ (model.onnx and, when the
     exporter writes one, model.onnx.data, unchanged), saves 2 good + 2 defect sample
     PNGs and expected.json with the scores from Python onnxruntime, and prints the
     sha256 of every file.

The fixture is NOT a useful anomaly detector (random backbone, synthetic textures): it is a
real anomalib export, to test that the runtime runs such a file unchanged.

Environment (throwaway, outside the repo), e.g.
  python3 -m venv /work/.venvs/torch
  /work/.venvs/torch/bin/pip install torch torchvision onnx onnxruntime==1.32.0 anomalib==2.7.0 onnxscript
  MALLOC_MMAP_THRESHOLD_=1048576 /work/.venvs/torch/bin/python tools/models/build_anomalib_fixture.py
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

SEED = 0
SIZE = 256
N_TRAIN = 20
N_TEST_GOOD = 6
N_TEST_DEFECT = 6


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- data set
def texture(rng: np.random.Generator) -> np.ndarray:
    """A woven/brushed-metal-like texture: oriented sinusoids + smoothed noise, slight tint."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    img = np.zeros((SIZE, SIZE), np.float32)
    for period, angle, amp in [(16.0, 0.0, 0.35), (16.0, np.pi / 2, 0.35), (5.3, np.pi / 4, 0.12)]:
        a = angle + rng.normal(0, 0.02)
        phase = rng.uniform(0, 2 * np.pi)
        img += amp * np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period + phase)
    noise = rng.normal(0, 1, (SIZE // 4, SIZE // 4)).astype(np.float32)
    noise = np.kron(noise, np.ones((4, 4), np.float32))  # blocky grain
    img += 0.10 * noise + 0.05 * rng.normal(0, 1, (SIZE, SIZE)).astype(np.float32)
    img = 0.5 + 0.25 * img
    tint = np.array([1.0, 0.95, 0.85], np.float32) * rng.uniform(0.95, 1.05)
    rgb = np.clip(img[..., None] * tint, 0, 1)
    return (rgb * 255 + 0.5).astype(np.uint8)


def add_defect(img: np.ndarray, kind: str, rng: np.random.Generator):
    out = img.astype(np.float32)
    mask = np.zeros((SIZE, SIZE), bool)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    if kind == "scratch":
        x0, y0 = rng.uniform(40, 216, 2)
        ang = rng.uniform(0, np.pi)
        length = rng.uniform(70, 120)
        d = np.abs((xx - x0) * np.sin(ang) - (yy - y0) * np.cos(ang))
        t = (xx - x0) * np.cos(ang) + (yy - y0) * np.sin(ang)
        mask = (d < 2.5) & (np.abs(t) < length / 2)
        out[mask] = out[mask] * 0.15
    elif kind == "stain":
        cx, cy = rng.uniform(60, 196, 2)
        r = rng.uniform(18, 30)
        mask = ((xx - cx) ** 2 / r**2 + (yy - cy) ** 2 / (0.6 * r) ** 2) < 1
        out[mask] = out[mask] * np.array([0.45, 0.25, 0.15]) + np.array([90, 40, 10])
    elif kind == "hole":
        cx, cy = rng.uniform(60, 196, 2)
        r = rng.uniform(10, 16)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r**2
        out[mask] = 10.0
    else:
        raise ValueError(kind)
    return np.clip(out, 0, 255).astype(np.uint8), mask


def make_dataset(root: Path) -> dict:
    from PIL import Image

    if root.exists():
        shutil.rmtree(root)
    rng = np.random.default_rng(SEED)
    dirs = {k: root / k for k in ["train/good", "test/good", "test/defect", "ground_truth/defect"]}
    for d in dirs.values():
        d.mkdir(parents=True)
    for i in range(N_TRAIN):
        Image.fromarray(texture(rng)).save(dirs["train/good"] / f"{i:03d}.png")
    for i in range(N_TEST_GOOD):
        Image.fromarray(texture(rng)).save(dirs["test/good"] / f"{i:03d}.png")
    kinds = ["scratch", "stain", "hole"]
    for i in range(N_TEST_DEFECT):
        img, mask = add_defect(texture(rng), kinds[i % len(kinds)], rng)
        Image.fromarray(img).save(dirs["test/defect"] / f"{i:03d}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(dirs["ground_truth/defect"] / f"{i:03d}.png")
    return {k: str(v) for k, v in dirs.items()}


# ---------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-root", type=Path, default=Path(__file__).resolve().parents[2],
                    help="repository root (default: two levels above this script)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/lineside_anomalib_fixture"),
                    help="scratch folder for the data set, checkpoints and the raw export")
    ap.add_argument("--coreset-ratio", type=float, default=0.1)
    ap.add_argument("--batch", choices=["1", "dynamic", "anomalib-default"], default="1",
                    help="batch dimension of the export: '1' (static [1,3,256,256], passes dynamic_axes={}), "
                         "'dynamic' (explicit torch.export.Dim), or anomalib's default (which gave a batch "
                         "fixed at 2 with anomalib 2.7.0 / torch 2.15.0)")
    args = ap.parse_args()

    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "1048576")  # only effective if set before start
    import torch
    from importlib.metadata import version

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    from lightning.pytorch import seed_everything

    seed_everything(SEED, workers=True)

    from anomalib.data import Folder
    from anomalib.deploy import ExportType
    from anomalib.engine import Engine
    from anomalib.models import Patchcore

    versions = {p: version(p) for p in ["anomalib", "torch", "torchvision", "lightning", "timm", "onnx",
                                        "onnxscript", "onnxruntime", "numpy", "pillow"]}
    print("versions:", json.dumps(versions))

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    data_root = work / "data"
    make_dataset(data_root)

    datamodule = Folder(
        name="lineside_texture",
        root=data_root,
        normal_dir="train/good",
        abnormal_dir="test/defect",
        normal_test_dir="test/good",
        mask_dir="ground_truth/defect",
        train_batch_size=4,
        eval_batch_size=4,
        num_workers=0,
        seed=SEED,
    )
    model = Patchcore(
        backbone="resnet18",
        layers=("layer2", "layer3"),
        pre_trained=False,
        coreset_sampling_ratio=args.coreset_ratio,
        num_neighbors=9,
        visualizer=False,
    )
    engine = Engine(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        default_root_dir=work / "results",
        logger=False,
        enable_progress_bar=False,
    )
    engine.fit(model=model, datamodule=datamodule)
    test_metrics = engine.test(model=model, datamodule=datamodule)
    print("test metrics:", test_metrics)

    export_root = work / "export"
    if export_root.exists():
        shutil.rmtree(export_root)
    if args.batch == "1":
        # no dynamic axes -> anomalib builds a [1,3,H,W] example input and dynamo keeps it static
        onnx_kwargs = {"dynamic_axes": {}}
    elif args.batch == "dynamic":
        onnx_kwargs = {"dynamic_shapes": ({0: torch.export.Dim("batch_size", min=1, max=64)},)}
    else:
        onnx_kwargs = None
    onnx_path = engine.export(model=model, export_type=ExportType.ONNX, export_root=export_root,
                              input_size=(SIZE, SIZE), onnx_kwargs=onnx_kwargs)
    onnx_path = Path(onnx_path)
    print("exported:", onnx_path, sorted(p.name for p in onnx_path.parent.iterdir()))

    # ---- copy to the repo, unchanged
    import onnx
    import onnxruntime as ort
    from PIL import Image

    fix_dir = args.out_root / "models" / "fixtures" / "anomalib_patchcore"
    samples_dir = fix_dir / "samples"
    if samples_dir.exists():
        shutil.rmtree(samples_dir)
    samples_dir.mkdir(parents=True)
    for old in fix_dir.glob("model.onnx*"):
        old.unlink()
    copied = []
    for p in sorted(onnx_path.parent.iterdir()):
        if p.name.startswith(onnx_path.name):  # model.onnx, model.onnx.data
            shutil.copyfile(p, fix_dir / p.name)
            copied.append(fix_dir / p.name)
    model_file = fix_dir / onnx_path.name

    m = onnx.load(str(model_file), load_external_data=False)
    ext = sorted({e.value for t in m.graph.initializer for e in t.external_data if e.key == "location"})
    info = {
        "export_batch_option": args.batch,
        "onnx_kwargs": repr(onnx_kwargs),
        "opset": [(o.domain or "ai.onnx", o.version) for o in m.opset_import],
        "ir_version": m.ir_version,
        "producer": f"{m.producer_name} {m.producer_version}",
        "external_data_files": ext,
        "metadata_props": {p.key: p.value for p in m.metadata_props},
    }
    onnx.checker.check_model(str(model_file), full_check=True)

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(model_file), so, providers=["CPUExecutionProvider"])
    info["inputs"] = [{"name": i.name, "shape": i.shape, "type": i.type} for i in sess.get_inputs()]
    info["outputs"] = [{"name": o.name, "shape": o.shape, "type": o.type} for o in sess.get_outputs()]

    def run(img: np.ndarray) -> dict:
        x = np.ascontiguousarray((img.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
        outs = sess.run(None, {sess.get_inputs()[0].name: x})
        res = {}
        for o, v in zip(sess.get_outputs(), outs):
            res[o.name] = {"shape": list(v.shape), "dtype": str(v.dtype)}
            if o.name in ("pred_score", "pred_label"):
                res[o.name]["value"] = v.reshape(-1).tolist()
            elif o.name == "anomaly_map":
                res[o.name].update(min=float(v.min()), max=float(v.max()), mean=float(v.mean()))
            elif o.name == "pred_mask":
                res[o.name]["true_fraction"] = float(np.asarray(v, dtype=np.float64).mean())
        return res

    # all test images through ORT, and the torch model for comparison
    all_scores = {}
    model.eval()
    for sub in ["test/good", "test/defect"]:
        for p in sorted((data_root / sub).glob("*.png")):
            img = np.asarray(Image.open(p).convert("RGB"))
            r = run(img)
            with torch.no_grad():
                tb = model(torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1)[None])
            x = np.ascontiguousarray((img.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
            amap = sess.run(["anomaly_map"], {sess.get_inputs()[0].name: x})[0]
            all_scores[f"{sub}/{p.name}"] = {
                "ort_pred_score": r["pred_score"]["value"][0],
                "torch_pred_score": float(tb.pred_score.reshape(-1)[0]),
                "ort_pred_label": r["pred_label"]["value"][0],
                "anomaly_map_max_abs_diff_ort_vs_torch": float(np.abs(amap - tb.anomaly_map.numpy().reshape(amap.shape)).max()),
            }
    print("scores (ORT vs torch):")
    for k, v in all_scores.items():
        print(f"  {k}: {v}")

    # samples: 2 good, 2 defect (000 = scratch, 002 = hole) with masks. Defects whose score lies at
    # the threshold (normalised 0.5, e.g. the weakest defect of the validation half) are avoided.
    expected = {"input": "RGB uint8 PNG -> float32 NCHW [1,3,256,256] / 255 (no mean/std: the graph normalises)",
                "model": onnx_path.name, "samples": {}}
    picks = [("good", "test/good", 0), ("good", "test/good", 1), ("defect", "test/defect", 0), ("defect", "test/defect", 2)]
    for label, sub, i in picks:
        src = data_root / sub / f"{i:03d}.png"
        name = f"{label}_{i}.png"
        shutil.copyfile(src, samples_dir / name)
        ent = {"label": label, "source": f"{sub}/{src.name}", "sha256": sha256(samples_dir / name)}
        if label == "defect":
            ent["kind"] = ["scratch", "stain", "hole"][i % 3]
        if label == "defect":
            mname = f"{label}_{i}_mask.png"
            shutil.copyfile(data_root / "ground_truth/defect" / src.name, samples_dir / mname)
            ent["mask"] = mname
            ent["mask_sha256"] = sha256(samples_dir / mname)
        img = np.asarray(Image.open(samples_dir / name).convert("RGB"))
        ent["onnxruntime"] = run(img)
        expected["samples"][name] = ent
    expected["onnxruntime_version"] = ort.__version__
    expected["all_test_images"] = all_scores
    (samples_dir / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")

    report = {"versions": versions, "model_info": info, "test_metrics": test_metrics,
              "files": {str(p.relative_to(args.out_root)): {"sha256": sha256(p), "bytes": p.stat().st_size}
                        for p in copied + sorted(samples_dir.iterdir())}}
    (work / "report.json").write_text(json.dumps(report, indent=1, default=str))
    print("model info:", json.dumps(info, indent=1, default=str)[:4000])
    print("files:")
    for k, v in report["files"].items():
        print(f"  {v['sha256']}  {v['bytes']:>10}  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
