import os, random, sys
root = sys.argv[1]; tick = int(sys.argv[2])
rnd = random.Random(1000 + tick)
words = [b"alpha", b"beta", b"gamma", b"delta", b"sample", b"result", b"0.125", b"1e-3", b"theta", b"model"]
def text(n, r):
    out = bytearray()
    while len(out) < n:
        out += r.choice(words) + (b"\n" if r.random() < 0.1 else b" ")
    return bytes(out[:n])
users = [f"user{i}" for i in range(5)]
projects = ["proj-a", "proj-b"]
if tick == 0:
    for u in users:
        for p in projects:
            d = os.path.join(root, u, p); os.makedirs(os.path.join(d, "src"), exist_ok=True)
            r = random.Random(hash((u, p)) & 0xffff)
            for i in range(20):
                open(os.path.join(d, "src", f"file{i}.py"), "wb").write(text(r.randint(1000, 100000), r))
            for i in range(2):
                open(os.path.join(d, f"data{i}.bin"), "wb").write(os.urandom(10 * 1024 * 1024))
            open(os.path.join(d, "table.csv"), "wb").write(text(5 * 1024 * 1024, r))
            open(os.path.join(d, "run.log"), "wb").write(text(20000, r))
else:
    for u in users:
        for p in projects:
            d = os.path.join(root, u, p)
            with open(os.path.join(d, "run.log"), "ab") as f:
                f.write(text(10000, rnd))
            f = os.path.join(d, "src", f"file{rnd.randint(0, 19)}.py")
            b = bytearray(open(f, "rb").read()); at = rnd.randint(0, len(b) - 100); b[at:at+50] = text(50, rnd)
            open(f, "wb").write(bytes(b))
    u = users[tick % 5]
    open(os.path.join(root, u, "proj-a", f"new{tick}.bin"), "wb").write(os.urandom(2 * 1024 * 1024))
