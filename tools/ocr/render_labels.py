"""Renders food-label test images (black print on a white label, slight tilt, sensor noise)
with their true text, for OCR tests and the date-code demo.

usage: render_labels.py OUT_DIR [--count N] [--seed S] [--today YYYY-MM-DD]
Writes label_XX.png and truth.json ({"images": {file: {"verdict", "texts": [line, ...]}}};
NG for a date already past). Font: DejaVu Sans (Debian
fonts-dejavu-core) when installed, else the FreeType font Pillow embeds (Aileron).
"""
import argparse
import datetime as dt
import json
import pathlib
import random

from PIL import Image, ImageDraw, ImageFilter, ImageFont

PRODUCTS = ["OAT BISCUITS", "Tomato Soup", "GREEK YOGHURT", "Rye Crackers", "APPLE JUICE",
            "Lentil Curry", "BUTTER COOKIES", "Fresh Pasta", "SMOKED SALMON", "Honey Granola"]
FONTS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
         "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"]


def font(size, bold):
    path = pathlib.Path(FONTS[1 if bold else 0])
    if path.is_file():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def render(lines, rng, w=480, h=240):
    img = Image.new("L", (w, h), 238)
    d = ImageDraw.Draw(img)
    d.rectangle([8, 8, w - 9, h - 9], fill=255, outline=90, width=2)
    y = 26
    for i, text in enumerate(lines):
        f = font(30 if i == 0 else 24, bold=(i == 0))
        d.text((28 + rng.randint(0, 20), y), text, fill=rng.randint(0, 40), font=f)
        y += 50 if i == 0 else 42
    img = img.rotate(rng.uniform(-3, 3), resample=Image.BICUBIC, fillcolor=238)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7)))
    px = img.load()
    for yy in range(h):
        for xx in range(w):
            px[xx, yy] = max(0, min(255, px[xx, yy] + int(rng.gauss(0, 4))))
    return img.convert("RGB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--seed", type=int, default=29)
    ap.add_argument("--today", default="2026-03-01", help="the date the best-before dates count from")
    ap.add_argument("--stale", type=int, default=2, help="labels whose date is already past")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    today = dt.date.fromisoformat(a.today)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in range(a.count):
        days = rng.randint(-20, -5) if i % (a.count // max(a.stale, 1)) == a.count // max(a.stale, 1) - 1 else rng.randint(20, 60)
        best = today + dt.timedelta(days=days)
        lot = f"L{rng.randint(2400, 2499)}-{rng.randint(0, 9999):04d}"
        lines = [PRODUCTS[i % len(PRODUCTS)],
                 f"BEST BEFORE {best.isoformat()}",
                 f"LOT {lot}",
                 f"NET WT {rng.choice([150, 250, 400, 500])} g"]
        name = f"label_{i:02d}.png"
        render(lines, rng).save(out / name)
        truth[name] = {"verdict": "NG" if days < 0 else "OK", "texts": lines}
    (out / "truth.json").write_text(json.dumps({"images": truth}, indent=1) + "\n")


if __name__ == "__main__":
    main()
