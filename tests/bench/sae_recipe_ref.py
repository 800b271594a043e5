"""An independent PyTorch reference of Anthropic's "Towards Monosemanticity" (2023) SAE recipe.

Written from the recipe, not from this project's trainer (mod/sae*.ts), so that the project's SAE
results can be checked against it (tests/bench/sae_recipe_compare.ts runs it). Reads activations
as raw float32 matrices (tests/bench/export_activations.ts writes them), trains one SAE per
(init, size, seed) and prints one JSON line per SAE on stdout; progress goes to stderr.

The recipe:
- x̄ = x − b_dec, f = ReLU(W_enc x̄ + b_enc), x̂ = W_dec f + b_dec (W_enc [d_in, d_sae],
  W_dec [d_sae, d_in]); loss = mean_rows Σ_d (x̂ − x)² + λ · mean_rows Σ_f |f|.
- init "independent" (2023): W_enc and W_dec each kaiming_uniform_ (default args), W_dec rows at
  unit norm, b_enc = 0, b_dec = geometric median of the first batch (Weiszfeld);
  init "parallel" (2024): W_dec rows random normal at unit norm, W_enc = W_decᵀ, same biases.
- Adam (0.9, 0.999), one pass over the training rows in order, full batches only; decoder rows at
  unit norm (gradient's parallel component removed before the step, rows renormalised after).
- optional linear lr warm-up at the start and again after each resampling.
- at each resampling step: features silent for the last `dead_window` steps are dead; from a pool
  of the latest batches (≥ resample_inputs rows) draw one input per dead feature with probability
  ∝ ‖x − x̂‖² (or ‖x − x̂‖⁴ with --resample-power 4); decoder row = x / ‖x‖ (the paper's "input
  vector"; (x − b_dec) / ‖x − b_dec‖ with --resample-center), encoder column = the same × 0.2 ×
  mean norm of the alive encoder columns (1 if none is alive), b_enc = 0, Adam moments of those
  entries 0; the resampled features' silence counters restart.
- held-out evaluation: fve = 1 − Σ‖x − x̂‖² / Σ‖x − mean x‖², mean L0, dead fraction (never fired),
  fraction with density < 1e-6, density resolution 1 / held-out tokens.

  /usr/bin/python3 tests/bench/sae_recipe_ref.py --train data/demo/recipe_ref/train.f32 \
      --heldout data/demo/recipe_ref/heldout.f32 --d-in 512 --sizes 512,1024 --seeds 0,1 \
      --l1 1 --lr 1e-3 --batch 1024 --resample-steps 128,256 --dead-window 96 \
      --resample-inputs 8192 [--warmup 0] [--inits independent,parallel] [--threads 2]
"""
import argparse
import json
import math
import os
import sys
import time

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"

# PyTorch's CPU allocator with glibc malloc page-faults large tensors (see torch_ref.py): re-execute
# with tcmalloc preloaded where it is installed.
if "RTD_TORCH_ALLOCATOR" not in os.environ and "--no-tcmalloc" not in sys.argv:
    if os.path.exists(TCMALLOC):
        env = dict(os.environ, LD_PRELOAD=TCMALLOC, RTD_TORCH_ALLOCATOR="tcmalloc")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
ALLOCATOR = os.environ.get("RTD_TORCH_ALLOCATOR", "glibc")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def ints(s):
    return [int(v) for v in s.split(",") if v.strip() != ""]


def load(path, d_in):
    a = np.fromfile(path, dtype="<f4")
    if a.size % d_in != 0:
        sys.exit(f"{path}: {a.size} floats is not a multiple of d_in {d_in}")
    return torch.from_numpy(a.reshape(-1, d_in))


def geometric_median(x, iters=100, tol=1e-6):
    """Weiszfeld's algorithm, from the mean; float64 for the sums."""
    x = x.double()
    y = x.mean(0)
    for _ in range(iters):
        d = (x - y).norm(dim=1).clamp_min(1e-8)
        w = 1.0 / d
        y_new = (w[:, None] * x).sum(0) / w.sum()
        if (y_new - y).norm() <= tol * max(1.0, y.norm().item()):
            y = y_new
            break
        y = y_new
    return y.float()


class Sae:
    def __init__(self, d_in, d_sae, init, first_batch):
        if init == "independent":
            w_enc = torch.empty(d_in, d_sae)
            w_dec = torch.empty(d_sae, d_in)
            torch.nn.init.kaiming_uniform_(w_enc)  # global RNG, seeded (torch 1.13 has no generator=)
            torch.nn.init.kaiming_uniform_(w_dec)
            w_dec /= w_dec.norm(dim=1, keepdim=True)
        elif init == "parallel":
            w_dec = torch.randn(d_sae, d_in)
            w_dec /= w_dec.norm(dim=1, keepdim=True)
            w_enc = w_dec.t().clone()
        else:
            sys.exit(f"unknown init {init!r}: expected independent or parallel")
        self.W_enc = w_enc.requires_grad_(True)
        self.W_dec = w_dec.contiguous().requires_grad_(True)
        self.b_enc = torch.zeros(d_sae, requires_grad=True)
        self.b_dec = geometric_median(first_batch).requires_grad_(True)

    def params(self):
        return [self.W_enc, self.b_enc, self.W_dec, self.b_dec]

    def encode(self, x):
        return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)

    def forward(self, x):
        f = self.encode(x)
        return f, f @ self.W_dec + self.b_dec


def loss_parts(sae, x, l1):
    f, x_hat = sae.forward(x)
    mse = (x_hat - x).pow(2).sum(1).mean()
    l1_term = f.abs().sum(1).mean()
    return mse + l1 * l1_term, mse, l1_term, f


@torch.no_grad()
def resample(sae, opt, dead, pool, gen, power, center):
    """Towards Monosemanticity's resampling of the `dead` features from the `pool` rows."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return 0
    err = torch.cat([(sae.forward(p)[1] - p).pow(2).sum(1) for p in pool.split(4096)])
    x_pool = pool
    w = err.pow(power / 2).double()
    if not torch.isfinite(w).all() or w.sum() <= 0:
        w = torch.ones_like(w)
    idx = torch.multinomial(w, n_dead, replacement=n_dead > len(w), generator=gen)
    x = x_pool[idx]
    if center:
        x = x - sae.b_dec
    direction = x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)
    alive = ~dead
    enc_norm = sae.W_enc[:, alive].norm(dim=0).mean().item() if alive.any() else 1.0
    ids = dead.nonzero().squeeze(1)
    sae.W_dec[ids] = direction
    sae.W_enc[:, ids] = direction.t() * 0.2 * enc_norm
    sae.b_enc[ids] = 0.0
    for p, sel in ((sae.W_dec, (ids,)), (sae.W_enc, (slice(None), ids)), (sae.b_enc, (ids,))):
        st = opt.state.get(p, {})
        for k in ("exp_avg", "exp_avg_sq"):
            if k in st:
                st[k][sel] = 0.0
    return n_dead


def train(a, data, held, d_sae, init, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    B = a.batch
    steps = data.shape[0] // B
    if steps == 0:
        sys.exit(f"{data.shape[0]} training rows make no full batch of {B}")
    sae = Sae(a.d_in, d_sae, init, data[:B])
    opt = torch.optim.Adam(sae.params(), lr=a.lr, betas=(0.9, 0.999))
    pool_batches = max(1, math.ceil(a.resample_inputs / B))
    pool = []
    since_fired = torch.zeros(d_sae, dtype=torch.long)
    resample_at = set(a.resample_steps)
    warm_from = 0
    events = []
    t0 = time.perf_counter()
    last = {}
    for step in range(steps):
        if step in resample_at:
            dead = since_fired >= a.dead_window
            n = resample(sae, opt, dead, torch.cat(pool), gen, a.resample_power,
                         a.resample_center)
            events.append({"step": step, "n_dead": n, "dead_fraction": n / d_sae})
            since_fired[dead] = 0
            warm_from = step
        x = data[step * B:(step + 1) * B]
        lr = a.lr
        if a.warmup > 0:
            lr = a.lr * min(1.0, (step - warm_from + 1) / a.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=False)
        loss, mse, l1_term, f = loss_parts(sae, x, a.l1)
        loss.backward()
        with torch.no_grad():
            g, w = sae.W_dec.grad, sae.W_dec
            g -= (g * w).sum(1, keepdim=True) * w
        opt.step()
        with torch.no_grad():
            sae.W_dec /= sae.W_dec.norm(dim=1, keepdim=True)
            fired = (f > 0).any(0)
            since_fired += 1
            since_fired[fired] = 0
        pool.append(x)
        if len(pool) > pool_batches:
            pool.pop(0)
        last = {"loss": loss.item(), "mse": mse.item(), "l1": l1_term.item()}
        if a.log_every and (step % a.log_every == 0 or step == steps - 1):
            print(f"ref {init} f{d_sae} seed {seed}: step {step + 1}/{steps} loss "
                  f"{last['loss']:.4f} mse {last['mse']:.4f} L1 {last['l1']:.3f} "
                  f"dead-window {(since_fired >= a.dead_window).float().mean():.3f}",
                  file=sys.stderr)
    seconds = time.perf_counter() - t0
    return sae, steps, seconds, events, last


@torch.no_grad()
def evaluate(sae, held, chunk=4096):
    n = held.shape[0]
    mean = held.double().mean(0)
    sse = 0.0
    sst = 0.0
    l0 = 0.0
    l1 = 0.0
    count = torch.zeros(sae.W_dec.shape[0], dtype=torch.long)
    for x in held.split(chunk):
        f, x_hat = sae.forward(x)
        sse += (x_hat - x).double().pow(2).sum().item()
        sst += (x.double() - mean).pow(2).sum().item()
        active = f > 0
        l0 += active.sum().item()
        l1 += f.double().sum().item()
        count += active.sum(0)
    density = count.double() / n
    return {
        "fve": 1.0 - sse / sst,
        "mse": sse / n,
        "l0": l0 / n,
        "l1": l1 / n,
        "dead_fraction": (count == 0).double().mean().item(),
        "ultra_low_fraction": (density < 1e-6).double().mean().item(),
        "alive": int((count > 0).sum()),
        "heldout_tokens": n,
        "density_resolution": 1.0 / n,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", required=True)
    p.add_argument("--heldout", required=True)
    p.add_argument("--d-in", type=int, required=True)
    p.add_argument("--sizes", type=ints, required=True)
    p.add_argument("--seeds", type=ints, default=[0])
    p.add_argument("--inits", default="independent")
    p.add_argument("--l1", type=float, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--resample-steps", type=ints, default=[])
    p.add_argument("--dead-window", type=int, required=True)
    p.add_argument("--resample-inputs", type=int, required=True)
    p.add_argument("--resample-power", type=float, default=2.0,
                   help="draw probability ∝ ‖x − x̂‖^power (default 2)")
    p.add_argument("--resample-center", action="store_true",
                   help="new decoder row = (x − b_dec) / ‖x − b_dec‖ instead of x / ‖x‖")
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--log-every", type=int, default=0)
    p.add_argument("--no-tcmalloc", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    data = load(a.train, a.d_in)
    held = load(a.heldout, a.d_in)
    inits = [s for s in a.inits.split(",") if s]
    for init in inits:
        for d_sae in a.sizes:
            for seed in a.seeds:
                sae, steps, seconds, events, last = train(a, data, held, d_sae, init, seed)
                t_eval = time.perf_counter()
                ev = evaluate(sae, held)
                t_eval = time.perf_counter() - t_eval
                print(json.dumps({
                    "impl": "reference",
                    "init": init,
                    "size": d_sae,
                    "seed": seed,
                    **ev,
                    "steps": steps,
                    "train_tokens": steps * a.batch,
                    "train_seconds": seconds,
                    "tokens_per_s": steps * a.batch / seconds,
                    "eval_seconds": t_eval,
                    "final_loss": last.get("loss"),
                    "final_mse": last.get("mse"),
                    "final_l1": last.get("l1"),
                    "resample_events": len(events),
                    "resampled_features": sum(e["n_dead"] for e in events),
                    "resamples": events,
                    "threads": a.threads,
                    "allocator": ALLOCATOR,
                    "torch": torch.__version__,
                }), flush=True)


if __name__ == "__main__":
    main()
