"""Times what the Python inspection script did per frame with OpenCV, so lineside's
preprocessing bench has a peer figure from the same machine in the same session.

Per frame: cvtColor(YUYV -> RGB), resize to 224x224, normalise with ImageNet mean/std,
HWC -> CHW transpose into a contiguous float32 array (the model input). The frame is a
1280x720 YUYV frame with a 72-byte row padding, as in `benches/preprocess.rs`.

usage: preprocess_opencv.py [--iterations N] [--threads T]
Prints one line per interpolation: `opencv <interp> threads=<T> median_ms=<m> min_ms=<m>`.
`--threads 0` leaves OpenCV's default thread pool (what the replaced script ran with).
"""
import argparse
import time

import cv2
import numpy as np

W, H, PAD = 1280, 720, 72
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def yuyv_frame() -> np.ndarray:
    """A padded YUYV frame with the bench's test pattern (x^y, x/5, y/3) in its luma/chroma."""
    x = np.arange(W, dtype=np.uint32)[None, :]
    y = np.arange(H, dtype=np.uint32)[:, None]
    luma = ((x ^ y) & 0xFF).astype(np.uint8)
    u = ((x // 5) & 0xFF).astype(np.uint8)[:, ::2].repeat(H, 0)
    v = ((y // 3) & 0xFF).astype(np.uint8).repeat(W // 2, 1)
    packed = np.empty((H, W * 2 + PAD), dtype=np.uint8)
    packed[:, 0 : W * 2 : 4] = luma[:, 0::2]
    packed[:, 1 : W * 2 : 4] = u
    packed[:, 2 : W * 2 : 4] = luma[:, 1::2]
    packed[:, 3 : W * 2 : 4] = v
    packed[:, W * 2 :] = 0
    return packed


def preprocess(frame: np.ndarray, interpolation: int) -> np.ndarray:
    yuyv = frame[:, : W * 2].reshape(H, W, 2)
    rgb = cv2.cvtColor(yuyv, cv2.COLOR_YUV2RGB_YUYV)
    small = cv2.resize(rgb, (224, 224), interpolation=interpolation)
    norm = (small.astype(np.float32) * (1.0 / 255.0) - MEAN) / STD
    return np.ascontiguousarray(norm.transpose(2, 0, 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads > 0:
        cv2.setNumThreads(args.threads)
    threads = cv2.getNumThreads()
    frame = yuyv_frame()
    for name, flag in [
        ("linear", cv2.INTER_LINEAR),
        ("nearest", cv2.INTER_NEAREST),
    ]:
        for _ in range(50):
            preprocess(frame, flag)
        times = []
        for _ in range(args.iterations):
            t0 = time.perf_counter()
            out = preprocess(frame, flag)
            times.append(time.perf_counter() - t0)
        assert out.shape == (3, 224, 224) and out.dtype == np.float32
        times.sort()
        median = times[len(times) // 2] * 1e3
        print(f"opencv {name} threads={threads} median_ms={median:.3f} min_ms={times[0] * 1e3:.3f}")


if __name__ == "__main__":
    main()
