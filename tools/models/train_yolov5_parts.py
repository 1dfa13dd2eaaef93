#!/usr/bin/env python3
"""Train a small YOLOv5n "parts" detector from scratch with the original YOLOv5 code and export it to ONNX.

The point is a real `[1, N, 5 + nc]` export (YOLOv5/YOLOX layout: cx, cy, w, h in input pixels,
objectness, class scores; sigmoid and grid/anchor decode inside the graph) for lineside's detect
head, beside the YOLOv8 layout of models/yolo-parts.

Writes, relative to the repository root (or --out-root):
  models/yolov5-parts/yolov5n_parts.onnx   YOLOv5's own ONNX export (export.py: opset 17, fixed 256x256,
                                           dynamic=False, simplify=False, no NMS), input `images`
                                           [1,3,256,256] float32 RGB /255, output `output0` [1, 4032, 7]
  models/yolov5-parts/README.md            model card: provenance, licences, sha256, I/O, pre/post-processing,
                                           measured quality
  models/yolov5-parts/metrics.json         YOLOv5 val.py metrics (best.pt and the ONNX file) + provenance
The data set is the one of tools/models/train_yolo_parts.py (its renderer is imported, not copied):
same seed, 200 train / 40 val renders, classes 0 screw, 1 hex; rendered into --work (default
/tmp/yolov5-parts), not committed. tests/fixtures/yolo/render_{0,1,2}.png are val renders 0..2 of
that seed, so they are held out for this model too.

YOLOv5 comes from PyPI's `yolov5` package (fcakyon's packaging of ultralytics/yolov5 v7.0, GPL-3.0;
upstream YOLOv5 is AGPL-3.0). It is used offline only: the network is built from its bundled
models/yolov5n.yaml with nc=2 and random init, nothing is downloaded (every hub/GitHub/font
download helper is replaced by one that raises, and outgoing sockets are refused). Install into the
throwaway torch environment without touching torch:

  nice -n 19 /work/.venvs/torch/bin/pip install --no-deps yolov5==7.0.14
  nice -n 19 /work/.venvs/torch/bin/pip install seaborn==0.13.2   # imported by yolov5.utils.plots
  nice -n 19 /work/.venvs/torch/bin/python tools/models/train_yolov5_parts.py   # 30 epochs (4.5-7 min here), 15 min cap, 1 thread

Two imports of yolov5 7.0.14 are not installed but stubbed here, because nothing we run uses them:
`pkg_resources` (gone from setuptools >= 81; yolov5 only calls `parse_version`, given from
`packaging`) and `roboflow` (imported by train.py for its upload/download options only). Three newer
library behaviours are bridged: `np.trapz` (removed in numpy 2.4; `np.trapezoid` is the same function);
torch.load's `weights_only` default (True since torch 2.6; YOLOv5 checkpoints pickle the model, and only
checkpoints this script wrote are loaded); and torch.onnx.export runs with `dynamo=False`, the
TorchScript-based exporter YOLOv5 7.0's export.py was written for (torch >= 2.9 defaults to dynamo).

The run is deterministic on CPU with one thread: two runs with the defaults (262 s and 408 s on the
shared cores) wrote the same yolov5n_parts.onnx, byte for byte. A run the --minutes cap cuts short is not
that model (the cap is only a guard; the epoch count makes the model).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import time
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # no __pycache__ beside the imported tool scripts
sys.path.insert(0, str(HERE))
import train_yolo_parts as parts  # noqa: E402  the renderer, data set writer, SEED, NAMES, sha256

SEED = parts.SEED
NAMES = parts.NAMES
YOLOV5_CFG = "yolov5n.yaml"


def offline_yolov5():
    """Imports YOLOv5 (train, val, export) with every network path closed; returns the modules."""
    import socket

    def no_network(*a, **k):
        raise RuntimeError(f"train_yolov5_parts.py: something tried to open a network connection {a}")

    socket.socket.connect = no_network
    socket.create_connection = no_network

    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        from packaging.version import parse

        shim = types.ModuleType("pkg_resources")
        shim.parse_version = parse
        sys.modules["pkg_resources"] = shim
    if "roboflow" not in sys.modules:
        try:
            import roboflow  # noqa: F401
        except ImportError:
            rf = types.ModuleType("roboflow")
            rf.Roboflow = None
            ver = types.ModuleType("roboflow.core.version")
            ver.Version = None
            sys.modules.update({"roboflow": rf, "roboflow.core": types.ModuleType("roboflow.core"),
                                "roboflow.core.version": ver})

    import numpy as np
    import torch

    # numpy 2.4 dropped `trapz` (renamed `trapezoid` in 2.0, same function); YOLOv5 7.0's
    # metrics.compute_ap still calls it.
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid

    # YOLOv5 7.0 checkpoints pickle the model; torch >= 2.6 loads weights only by default. Only
    # checkpoints this script just wrote are loaded.
    _load = torch.load

    def load(*a, **k):
        k.setdefault("weights_only", False)
        return _load(*a, **k)

    torch.load = load

    # YOLOv5 7.0's export_onnx was written for the TorchScript-based exporter (do_constant_folding,
    # dynamic_axes); torch >= 2.9 defaults to the dynamo exporter, which builds opset 18, converts
    # down to 17 and leaves a .onnx.data file. Keep the exporter YOLOv5 was written for.
    _export = torch.onnx.export

    def onnx_export(*a, **k):
        k.setdefault("dynamo", False)
        return _export(*a, **k)

    torch.onnx.export = onnx_export

    import yolov5.export as export
    import yolov5.models.common as common
    import yolov5.models.experimental as experimental
    import yolov5.train as train
    import yolov5.utils.downloads as downloads
    import yolov5.utils.general as general
    import yolov5.utils.plots as plots
    import yolov5.val as val

    def no_download(*a, **k):
        raise RuntimeError(f"train_yolov5_parts.py: YOLOv5 tried to download {a} {k}")

    def local_only(file, *a, **k):
        if Path(str(file)).exists():
            return str(file)
        return no_download(file, *a, **k)

    for mod in (train, common, downloads):
        mod.attempt_download_from_hub = lambda *a, **k: None  # a local path is not a hub repo
    for mod in (train, experimental, downloads):
        mod.attempt_download = local_only
    for mod in (general, plots):
        mod.check_font = lambda *a, **k: None  # fonts are for plots only; never fetched
    general.check_requirements = plots.check_requirements = lambda *a, **k: None
    export.check_requirements = common.check_requirements = val.check_requirements = lambda *a, **k: None
    return train, val, export


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-root", default=str(HERE.parents[1]))
    ap.add_argument("--work", default="/tmp/yolov5-parts")
    ap.add_argument("--epochs", type=int, default=30,
                    help="epochs the LR schedule is laid out for (fixed, so the run is reproducible)")
    ap.add_argument("--minutes", type=float, default=15.0,
                    help="time budget: training stops after the epoch that crosses it")
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--val", type=int, default=40)
    a = ap.parse_args()

    out_root = Path(a.out_root)
    work = Path(a.work)
    if work.exists():
        shutil.rmtree(work)
    data_yaml = parts.make_dataset(work / "data", a.train, a.val)

    train, val, export = offline_yolov5()
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    import yaml
    import yolov5
    from yolov5.utils.callbacks import Callbacks
    from yolov5.utils.torch_utils import EarlyStopping, select_device

    # One thread by default: on 2 cores shared with other jobs, OpenMP threads that spin on an
    # oversubscribed machine made an epoch 5-10x slower than one thread.
    torch.set_num_threads(a.threads)
    cfg = Path(yolov5.__file__).parent / "models" / YOLOV5_CFG
    hyp_file = Path(yolov5.__file__).parent / "data" / "hyps" / "hyp.scratch-low.yaml"

    # The time budget: YOLOv5 has no `time=` option, so its early stopper also stops once the
    # budget is spent (checked after each epoch; the final best.pt validation still runs). The
    # epoch count is fixed so that a run that fits the budget is reproducible.
    t0 = time.time()
    budget_s = a.minutes * 60.0
    stopped = {"epoch": None, "epochs_done": 0, "final": False}

    class BudgetStopping(EarlyStopping):
        def __call__(self, epoch, fitness):
            stop = super().__call__(epoch, fitness)
            stopped["epochs_done"] = epoch + 1
            if time.time() - t0 > budget_s:
                stopped["epoch"] = epoch
                return True
            return stop

    train.EarlyStopping = BudgetStopping

    # Validate only after the last epoch (and the final best.pt check): on 2 shared cores a val
    # pass of the untrained model at conf 0.001 costs as much as a training epoch. (`noval=True`
    # cannot be used: yolov5 7.0.14's train() then reads `map50s` before assigning it.) With
    # fitness 0 until then, best.pt is the EMA of the last epoch.
    calls = {"n": 0}

    def final_only_val(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= a.epochs or stopped["epoch"] is not None or time.time() - t0 > budget_s:
            return val.run(*args, **kwargs)
        nc = len(NAMES)
        return (0.0,) * 7, np.zeros(nc), np.zeros(nc), None

    train.validate = types.SimpleNamespace(run=final_only_val)

    # Hyperparameters: YOLOv5's hyp.scratch-low.yaml with the optimizer Ultralytics' own
    # optimizer='auto' picks for a run this short (what trained models/yolo-parts): AdamW,
    # lr0 = 0.002 * 5 / (4 + nc), beta1 0.9, bias warm-up from 0. YOLOv5's default SGD lr0 0.01
    # with its nominal batch 64 gets about three optimizer steps per epoch on 200 images, too few
    # to learn anything in minutes (mAP50 0.007 after 6 epochs in a trial run).
    hyp = yaml.safe_load(hyp_file.read_text())
    hyp.update(lr0=round(0.002 * 5 / (4 + len(NAMES)), 6), momentum=0.9, warmup_bias_lr=0.0)
    (work / "hyp.yaml").write_text(yaml.safe_dump(hyp, sort_keys=False))

    sys.argv = sys.argv[:1]  # YOLOv5's parser reads sys.argv; start from its defaults, not our flags
    opt = train.parse_opt(True)
    runs = work / "runs"
    for k, v in dict(
        weights="", cfg=str(cfg), data=str(data_yaml), hyp=str(work / "hyp.yaml"), epochs=a.epochs,
        batch_size=a.batch, imgsz=a.imgsz, device="cpu", workers=0, seed=SEED, noplots=True, noval=False,
        cache="ram", project=str(runs), name="train", exist_ok=True, patience=0, optimizer="AdamW",
    ).items():
        setattr(opt, k, v)
    opt.save_dir = str(runs / "train")
    device = select_device("cpu", batch_size=a.batch)
    # train.train, not train.main: main() would run check_requirements / resume / evolve logic.
    train.train(str(work / "hyp.yaml"), opt, device, Callbacks())
    train_s = time.time() - t0
    best = runs / "train" / "weights" / "best.pt"
    epochs_done = stopped["epochs_done"]

    def measure(weights) -> dict:
        (p, r, map50, map50_95, *_), maps, map50s, _ = val.run(
            data=str(data_yaml), weights=str(weights), imgsz=a.imgsz, batch_size=8, device="cpu",
            workers=0, half=False, plots=False, project=str(runs), name="val", exist_ok=True,
            conf_thres=0.001, iou_thres=0.6, verbose=True)
        return {"mAP50": float(map50), "mAP50-95": float(map50_95), "precision": float(p), "recall": float(r),
                "per_class_mAP50": {NAMES[i]: float(v) for i, v in enumerate(map50s[: len(NAMES)])}}

    m_pt = measure(best)

    # YOLOv5's own export: ONNX only, opset 17, fixed size, no NMS, not simplified.
    onnx_file = export.run(weights=str(best), imgsz=(a.imgsz, a.imgsz), include=("onnx",), opset=17,
                           dynamic=False, simplify=False, device="cpu", half=False)
    onnx_file = Path([f for f in onnx_file if f.endswith(".onnx")][0])

    dst = out_root / "models" / "yolov5-parts"
    dst.mkdir(parents=True, exist_ok=True)
    final = dst / "yolov5n_parts.onnx"
    om = onnx.load(str(onnx_file))
    meta = {p.key: p.value for p in om.metadata_props}
    # lineside reads `names` as a Python dict literal, as Ultralytics writes it; YOLOv5 7.0 writes it
    # the same way (str(model.names)). Check rather than assume.
    names = ast.literal_eval(meta["names"])
    assert names == dict(enumerate(NAMES)), meta
    shutil.copyfile(onnx_file, final)

    # The graph holds sigmoid + grid/anchor decode: the ONNX output must equal the PyTorch model's
    # inference output (Detect in eval mode, which decodes), and objectness must be a probability.
    from yolov5.models.experimental import attempt_load

    model = attempt_load(str(best), device=torch.device("cpu"), inplace=True, fuse=True).eval()
    x = torch.rand(1, 3, a.imgsz, a.imgsz, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        ref = model(x)[0].numpy()
    sess = ort.InferenceSession(str(final), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    assert len(got) == 1, f"expected one output, got {len(got)}"
    got = got[0]
    decode_diff = float(abs(got - ref).max())
    assert got.shape == (1, 3 * sum((a.imgsz // s) ** 2 for s in (8, 16, 32)), 5 + len(NAMES)), got.shape
    assert decode_diff < 1e-3, decode_diff
    assert 0.0 <= got[..., 4:].min() and got[..., 4:].max() <= 1.0
    ops = sorted({n.op_type for n in om.graph.node})

    m_onnx = measure(final)

    ins = [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim]) for i in om.graph.input]
    outs = [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in om.graph.output]
    m = {"best_pt": m_pt, "onnx_file": m_onnx, "train_seconds": train_s, "epochs_planned": a.epochs,
         "epochs_done": epochs_done, "optimizer": "AdamW", "lr0": hyp["lr0"],
         "stopped_by_budget_after_epoch": stopped["epoch"],
         "imgsz": a.imgsz, "batch": a.batch, "train_images": a.train, "val_images": a.val,
         "yolov5": yolov5.__version__, "torch": torch.__version__, "onnx_version": onnx.__version__,
         "onnxruntime": ort.__version__, "seed": SEED, "cfg": YOLOV5_CFG, "opset": 17,
         "sha256": parts.sha256(final), "inputs": ins, "outputs": outs, "metadata": meta,
         "onnx_vs_pytorch_max_abs_diff": decode_diff, "onnx_ops": ops}
    (dst / "metrics.json").write_text(json.dumps(m, indent=2) + "\n")

    n_out = outs[0][1][1]
    card = f"""# yolov5-parts: YOLOv5n trained from scratch on synthetic screw/hex renders

The real YOLOv5-layout export (`[1, N, 5 + nc]`) that `tests/detect_reference.rs` checks lineside's
detect head against (fixture: `tests/fixtures/yolov5/reference.json`, made by `tools/reference/yolov5_ref.py`
with YOLOv5's own letterbox, `non_max_suppression` and `scale_boxes`).

- File: `yolov5n_parts.onnx` ({final.stat().st_size / 1e6:.1f} MB), sha256 `{m['sha256']}`
- Built by `tools/models/train_yolov5_parts.py` (seed {SEED}); PyPI `yolov5` {yolov5.__version__} (packaging of
  ultralytics/yolov5 v7.0), torch {torch.__version__}, onnx {onnx.__version__}; exported with YOLOv5's `export.run`:
  ONNX opset 17, fixed {a.imgsz}x{a.imgsz}, `dynamic=False`, `simplify=False`, no NMS in the graph.
- Architecture: YOLOv5's bundled `models/{YOLOV5_CFG}` (nc={len(NAMES)}, anchors P3/8, P4/16, P5/32, 3 per cell), random
  initialisation. **No pretrained weights were downloaded or used** (the script closes every download path).
- Licences: the YOLOv5 training/export code (PyPI `yolov5`, GPL-3.0; upstream ultralytics/yolov5 is AGPL-3.0) is
  only run offline by the script; none of it ships in lineside. The weights are ours: trained from scratch on renders
  made by our script; the same licence as this repository applies.
- Classes (`names` metadata, written by YOLOv5's export in the Ultralytics format `{meta['names']}`; also `stride` = {meta.get('stride')}):
  {', '.join(f'{i}={n}' for i, n in enumerate(NAMES))}
- Data: the renders of `tools/models/train_yolo_parts.py` (its renderer is imported): {a.train} train / {a.val} val,
  320x320, brushed plate with 1..8 parts (radius 14..40 px), YOLO txt labels; re-rendered bit for bit from the seed,
  not committed. `tests/fixtures/yolo/render_{{0,1,2}}.png` are val renders, never trained on.
- Training: CPU (2 shared cores), YOLOv5 `train.train` with `hyp.scratch-low.yaml` (default augmentation: mosaic,
  HSV, translate/scale, fliplr 0.5) except the optimizer: AdamW, lr0 {hyp['lr0']}, beta1 0.9, bias warm-up from 0 — what
  Ultralytics' `optimizer='auto'` picks for a short run (YOLOv5's SGD lr0 0.01 at nominal batch 64 makes ~3 steps an
  epoch here and had learnt next to nothing after 6 epochs in a trial). Batch {a.batch}, imgsz {a.imgsz}, {a.epochs} epochs
  (LR schedule laid out for them), time cap {a.minutes:g} min: {epochs_done} epochs done in {train_s:.0f} s{' (stopped by the cap)' if stopped['epoch'] is not None else ''}.
  Validation runs after the last epoch only; the exported weights are the EMA of the last epoch. torch threads:
  {a.threads} (with other jobs on the 2 cores, 2 spinning OpenMP threads made an epoch ~8x slower).

## I/O

- input `{ins[0][0]}` float32 {ins[0][1]}: RGB, NCHW, values /255.
- output `{outs[0][0]}` float32 {outs[0][1]}: {n_out} anchors (3 per cell on the 32x32, 16x16 and 8x8 grids), each
  (cx, cy, w, h) in input pixels, objectness, {len(NAMES)} class scores. Sigmoid and the grid/anchor decode are inside
  the graph (checked: the ONNX output equals the PyTorch model's decoded inference output to {decode_diff:.1e}
  absolute, on a random input).
- Preprocessing: YOLOv5 `letterbox` (scale to fit, centred, pad 114, cv2.INTER_LINEAR),
  BGR→RGB, /255 → lineside `fit = "letterbox"`, `pad_value = 114`, `interpolation = "linear"`.
  For a fixed-size export `detect.py` letterboxes with `auto=False` and `scaleup=True`, so images smaller than
  {a.imgsz} are scaled up, as lineside does.
- Post-processing (YOLOv5 `detect.py` defaults): score = objectness × class score, confidence 0.25, class-aware NMS
  IoU 0.45, max 1000 detections, boxes scaled back to the frame (`scale_boxes`, clipped).
  YOLOv5 7.0's `scale_boxes` maps back with the unrounded gain and padding, not the letterbox as placed (rounded
  size, `round(pad - 0.1)`), which lineside uses, as Ultralytics 8.x's `scale_boxes` does: both agree on the test
  images (320x320, 384x303: whole-pixel sizes and padding) and can differ by up to ~0.75 input pixel on others.

## Quality on the {a.val} held-out renders (YOLOv5 `val.run`, conf 0.001, IoU 0.6, imgsz {a.imgsz})

| weights | mAP50 | mAP50-95 | precision | recall |
|---|---|---|---|---|
| best.pt (PyTorch) | {m_pt['mAP50']:.4f} | {m_pt['mAP50-95']:.4f} | {m_pt['precision']:.4f} | {m_pt['recall']:.4f} |
| yolov5n_parts.onnx (onnxruntime) | {m_onnx['mAP50']:.4f} | {m_onnx['mAP50-95']:.4f} | {m_onnx['precision']:.4f} | {m_onnx['recall']:.4f} |

Per class mAP50 (ONNX): {', '.join(f'{k} {v:.4f}' for k, v in m_onnx['per_class_mAP50'].items())}.
`val.run` letterboxes PyTorch weights in rectangular batches and ONNX files square (batch 1, {a.imgsz}x{a.imgsz}), hence
the small differences between the rows. Note that val.py's NMS is multi-label (a box may count once per class above
0.001), unlike detect.py's (best class only), which is what lineside does.
"""
    (dst / "README.md").write_text(card)
    print(json.dumps(m, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
