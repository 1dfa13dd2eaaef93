"""Watched-folder figures with an unpacked release bundle: a backlog's throughput (against
kind = "images" on the same files) and pickup latency (rename into the folder -> record).

    scripts/package.sh && mkdir -p /tmp/box && tar -xzf dist/lineside-*-x86_64.tar.gz -C /tmp/box
    .cache/venv/bin/python tools/bench/folder_source.py /tmp/box/lineside-0.1.0-x86_64 [N]

Writes its scenarios into the bundle's scenarios/ and its files under /tmp/folder-bench.
"""
import io, os, shutil, signal, subprocess, sys, time
BOX = sys.argv[1]
W = "/tmp/folder-bench/w"
shutil.rmtree(W, ignore_errors=True); os.makedirs(W + "/drop")
from PIL import Image
img = Image.open(BOX + "/scenarios/samples/photos/coffee.png").convert("RGB").resize((224, 224))
buf = io.BytesIO(); img.save(buf, "PNG"); png = buf.getvalue()
N = int(sys.argv[2]) if len(sys.argv) > 2 else 200
for i in range(N):
    open(f"{W}/drop/p{i:05}.png", "wb").write(png)
demo = open(BOX + "/scenarios/demo.toml").read()
def scenario(kind_block, out):
    s = demo.replace('kind = "images"              # a folder of PNG/JPEG/BMP, replayed in name order\npath = "samples/photos"      # relative to this file\nfps = 0                      # 0: as fast as possible', kind_block)
    s = s.replace('dir = "../out/demo"', f'dir = "{out}"')
    p = f"{BOX}/scenarios/{os.path.basename(out)}.toml"
    open(p, "w").write(s); return p
def count(out):
    try: return sum(1 for _ in open(out + "/defects.jsonl"))
    except FileNotFoundError: return 0
# 1. images kind over the backlog (reference)
s = scenario(f'kind = "images"\npath = "{W}/drop"', f"{W}/out-images")
t = time.time(); subprocess.run([BOX + "/bin/lineside", "run", "--no-progress", s], check=True, capture_output=True)
print(f"images kind, {N} files: {time.time()-t:.2f} s ({N/(time.time()-t):.0f} files/s)")
# 2. folder kind over the same backlog
s = scenario(f'kind = "folder"\npath = "{W}/drop"\npoll_ms = 50\nsettle_ms = 300', f"{W}/out-folder")
t = time.time(); p = subprocess.Popen([BOX + "/bin/lineside", "run", "--no-progress", s], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while count(f"{W}/out-folder") < N:
    assert time.time() - t < 300; time.sleep(0.01)
el = time.time() - t
print(f"folder kind, backlog of {N} files (start, poll 50 ms, settle 300 ms, fsync per file): {el:.2f} s ({N/el:.0f} files/s)")
# 3. pickup latency: one file renamed into the folder, until its record is in the log
lat = []
for i in range(10):
    n = count(f"{W}/out-folder")
    open(f"{W}/drop/l{i}.png.tmp", "wb").write(png)
    t = time.time(); os.rename(f"{W}/drop/l{i}.png.tmp", f"{W}/drop/l{i}.png")
    while count(f"{W}/out-folder") <= n:
        assert time.time() - t < 30; time.sleep(0.002)
    lat.append(time.time() - t)
p.send_signal(signal.SIGTERM); p.wait(timeout=30)
lat.sort()
print(f"pickup latency (rename -> record), 10 files, poll 50 ms, settle 300 ms: median {lat[5]*1000:.0f} ms, max {lat[-1]*1000:.0f} ms")
