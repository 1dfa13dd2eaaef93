"""The Python inspection script lineside replaces, run on the same frames as `lineside bench`
so the two are compared in one session on one machine (issue 11 item 4).

What a user would write for the demo classifier: per frame cv2.cvtColor(YUYV -> RGB), resize
the shorter side to 256 (INTER_LINEAR), centre crop 224x224, scale and normalise ((v/255 -
0.498) / 0.502, the model card's), HWC -> CHW, one onnxruntime session per thread (1 intra-op
thread each; frames dealt round-robin), softmax, top-5, OK/NG against the demo's rules, one
JSON line per frame (to /dev/null: the log write, not the disk, is timed).

usage: pipeline_peer.py --raw FILE --model ONNX --threads T [--frames N]
  FILE: packed YUYV 1280x720 frames, back to back (what lineside's raw source replays).
Also times ORT alone (the same sessions on the same tensors, nothing around them).
Prints one JSON object: {"threads", "frames", "peer_fps", "ort_alone_fps"}.
"""
import argparse
import json
import os
import threading
import time

import cv2
import numpy as np
import onnxruntime as ort

W, H = 1280, 720
OK = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "espresso", "cup", "coffee mug"}


def preprocess(frame: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(frame.reshape(H, W, 2), cv2.COLOR_YUV2RGB_YUYV)
    scale = 256 / min(H, W)
    rw, rh = round(W * scale), round(H * scale)
    small = cv2.resize(rgb, (rw, rh), interpolation=cv2.INTER_LINEAR)
    x0, y0 = (rw - 224) // 2, (rh - 224) // 2
    crop = small[y0 : y0 + 224, x0 : x0 + 224].astype(np.float32)
    crop = (crop / 255.0 - 0.498) / 0.502
    return np.ascontiguousarray(crop.transpose(2, 0, 1))[None]


def session(model: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def run_threads(threads: int, work) -> float:
    """Runs work(i) in `threads` threads started together; returns the wall time."""
    start = threading.Barrier(threads + 1)
    def body(i):
        start.wait()
        work(i)
    ts = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frames", type=int, default=300)
    a = ap.parse_args()
    frames = np.fromfile(a.raw, dtype=np.uint8).reshape(-1, H * W * 2)
    labels = open(a.labels).read().splitlines()
    sessions = [session(a.model) for _ in range(a.threads)]
    name = sessions[0].get_inputs()[0].name
    for s in sessions:  # warm up
        s.run(None, {name: preprocess(frames[0])})
    out = open(os.devnull, "w")
    lock = threading.Lock()

    def peer(i):
        s = sessions[i]
        for n in range(i, a.frames, a.threads):
            logits = s.run(None, {name: preprocess(frames[n % len(frames)])})[0][0]
            p = np.exp(logits - logits.max())
            p /= p.sum()
            top = np.argsort(-p)[:5]
            ok = labels[top[0]] in OK and p[top[0]] >= 0.3
            line = json.dumps({"seq": n, "verdict": "OK" if ok else "NG",
                               "classes": [{"label": labels[k], "score": float(p[k])} for k in top]})
            with lock:
                out.write(line + "\n")

    tensor = preprocess(frames[0])

    def alone(i):
        s = sessions[i]
        for _ in range(i, a.frames, a.threads):
            s.run(None, {name: tensor})

    peer_s = run_threads(a.threads, peer)
    alone_s = run_threads(a.threads, alone)
    print(json.dumps({"threads": a.threads, "frames": a.frames,
                      "peer_fps": a.frames / peer_s, "ort_alone_fps": a.frames / alone_s}))


if __name__ == "__main__":
    main()
