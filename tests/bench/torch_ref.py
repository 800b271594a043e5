"""Reference timings in PyTorch for the same shapes as this project's benchmarks.

Run by tests/bench/compare.ts with Debian's python3-torch (/usr/bin/python3); prints one JSON
line: {"tokens_per_s": ..., "step_s": ..., "threads": ..., "blas": ..., "allocator": ...}.

PyTorch's CPU allocator takes every large tensor from malloc and gives it back on free; with glibc's
malloc that is an mmap/munmap per tensor, and on this machine the page faults that follow made a
4096 x 512 x 4096 matmul run at 71 GFLOP/s instead of 176 and relu at 1 GB/s instead of 8. So by
default (--allocator auto) the script re-executes itself with tcmalloc preloaded where Debian's
libtcmalloc-minimal4 is installed, the usual advice for PyTorch on CPU; --allocator glibc keeps
glibc's malloc. (jemalloc, libjemalloc2, also returns freed pages here and was slower than glibc.)

  /usr/bin/python3 tests/bench/torch_ref.py transformer --d-model 128 --heads 8 --d-mlp 512 \
      --ctx 128 --batch 8 --vocab 50257 --steps 5
  /usr/bin/python3 tests/bench/torch_ref.py sae --d-in 512 --features 4096 --batch 4096 --steps 5
"""
import argparse
import json
import math
import os
import sys
import time

ALLOCATORS = {
    "tcmalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
}


def preload_allocator():
    """Re-executes this script with a caching allocator preloaded; returns the allocator in use."""
    wanted = "auto"
    if "--allocator" in sys.argv:
        wanted = sys.argv[sys.argv.index("--allocator") + 1]
    if wanted not in ("auto", "glibc", *ALLOCATORS):
        sys.exit(f"--allocator must be auto, glibc, tcmalloc or jemalloc, got {wanted!r}")
    active = os.environ.get("RTD_TORCH_ALLOCATOR")
    if active:
        return active
    if wanted == "glibc":
        return "glibc"
    names = ["tcmalloc"] if wanted == "auto" else [wanted]
    for name in names:
        if os.path.exists(ALLOCATORS[name]):
            env = dict(os.environ, LD_PRELOAD=ALLOCATORS[name], RTD_TORCH_ALLOCATOR=name)
            os.execve(sys.executable, [sys.executable, *sys.argv], env)
    if wanted != "auto":
        sys.exit(f"{ALLOCATORS[wanted]} is not installed")
    return "glibc"


ALLOCATOR = preload_allocator()

import torch  # noqa: E402  (after the re-exec, so that the preloaded allocator serves it)
import torch.nn.functional as F  # noqa: E402


def transformer_step(a):
    d, h, m, t, v = a.d_model, a.heads, a.d_mlp, a.ctx, a.vocab
    dh = d // h
    g = torch.Generator().manual_seed(0)
    p = {
        "W_E": torch.randn(v, d, generator=g) * 0.02,
        "W_pos": torch.randn(t, d, generator=g) * 0.02,
        "ln1_w": torch.ones(d), "ln1_b": torch.zeros(d),
        "W_QKV": torch.randn(d, 3 * d, generator=g) * 0.02, "b_QKV": torch.zeros(3 * d),
        "W_O": torch.randn(d, d, generator=g) * 0.02, "b_O": torch.zeros(d),
        "ln2_w": torch.ones(d), "ln2_b": torch.zeros(d),
        "W_in": torch.randn(d, m, generator=g) * 0.02, "b_in": torch.zeros(m),
        "W_out": torch.randn(m, d, generator=g) * 0.02, "b_out": torch.zeros(d),
        "lnf_w": torch.ones(d), "lnf_b": torch.zeros(d),
        "W_U": torch.randn(d, v, generator=g) * 0.02, "b_U": torch.zeros(v),
    }
    for x in p.values():
        x.requires_grad_(True)
    opt = torch.optim.AdamW(p.values(), lr=1e-3, weight_decay=0.1)
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
    tokens = torch.randint(0, v, (a.batch, t), generator=g)

    def step():
        x = p["W_E"][tokens] + p["W_pos"]
        y = F.layer_norm(x, (d,), p["ln1_w"], p["ln1_b"], 1e-5)
        q, k, vv = (y @ p["W_QKV"] + p["b_QKV"]).split(d, dim=-1)
        q, k, vv = (z.view(a.batch, t, h, dh).transpose(1, 2) for z in (q, k, vv))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        z = (att @ vv).transpose(1, 2).reshape(a.batch, t, d)
        x = x + z @ p["W_O"] + p["b_O"]
        y = F.layer_norm(x, (d,), p["ln2_w"], p["ln2_b"], 1e-5)
        x = x + F.relu(y @ p["W_in"] + p["b_in"]) @ p["W_out"] + p["b_out"]
        y = F.layer_norm(x, (d,), p["lnf_w"], p["lnf_b"], 1e-5)
        logits = y[:, :-1] @ p["W_U"] + p["b_U"]
        loss = F.cross_entropy(logits.reshape(-1, v), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(p.values(), 1.0)
        opt.step()

    return step, a.batch * t


def sae_step(a):
    d, f = a.d_in, a.features
    g = torch.Generator().manual_seed(0)
    w_dec = torch.randn(f, d, generator=g)
    w_dec = w_dec / w_dec.norm(dim=1, keepdim=True)
    w_enc = w_dec.t().clone()
    b_enc, b_dec = torch.zeros(f), torch.zeros(d)
    params = [w_enc, b_enc, w_dec, b_dec]
    for x in params:
        x.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=1e-4)
    x = torch.relu(torch.randn(a.batch, d, generator=g))

    def step():
        acts = torch.relu((x - b_dec) @ w_enc + b_enc)
        x_hat = acts @ w_dec + b_dec
        loss = (x_hat - x).pow(2).sum(-1).mean() + 5.0 * acts.abs().sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():  # keep decoder rows at unit norm, as the project's trainer does
            w_dec.grad -= (w_dec.grad * w_dec).sum(1, keepdim=True) * w_dec
        opt.step()
        with torch.no_grad():
            w_dec.div_(w_dec.norm(dim=1, keepdim=True))

    return step, a.batch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["transformer", "sae"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--allocator", default="auto", help="auto, glibc, tcmalloc or jemalloc")
    for name, default in [("d-model", 128), ("heads", 8), ("d-mlp", 512), ("ctx", 128),
                          ("vocab", 50257), ("d-in", 512), ("features", 4096)]:
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--batch", type=int, help="sequences (transformer, default 8) or rows (sae, 4096)")
    a = ap.parse_args()
    a.batch = a.batch or (8 if a.kind == "transformer" else 4096)
    torch.set_num_threads(a.threads)
    step, tokens = transformer_step(a) if a.kind == "transformer" else sae_step(a)
    for _ in range(3):  # warm-up, as many steps as compare.ts gives this project
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    with open("/proc/self/maps") as maps:  # which BLAS the process really loaded
        loaded = maps.read()
    blas = "OpenBLAS" if "openblas" in loaded else "reference BLAS" if "libblas" in loaded else "?"
    print(json.dumps({"tokens_per_s": tokens / median, "step_s": median,
                      "threads": torch.get_num_threads(), "torch": torch.__version__, "blas": blas,
                      "allocator": ALLOCATOR}))


if __name__ == "__main__":
    main()
