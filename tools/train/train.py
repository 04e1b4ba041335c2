#!/usr/bin/env python3
"""Train one of Flotilla's shipped story models on the CPU and export it in Hugging Face layout.

    nice -n 19 /usr/bin/python3 tools/train/train.py --preset target --out models/flotilla-stories/target
    nice -n 19 /usr/bin/python3 tools/train/train.py --preset draft  --out models/flotilla-stories/draft

(after make_corpus.py and train_tokenizer.py; see docs/models.md for the exact commands that made the
shipped weights). Seeded: the same command on the same torch build gives the same weights, unless
--max-minutes stops it early. Writes model.safetensors (f16), config.json, generation_config.json,
tokenizer.json, tokenizer_config.json (and tokenizer.bin) into --out, and train_log.json + loss.png next to
them; the export is rewritten at every evaluation, so a run cut off early leaves a usable checkpoint.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama import PRESETS, Llama, hf_config, hf_state, load_hf, save_safetensors  # noqa: E402
from train_tokenizer import Tokenizer  # noqa: E402


def encode_file(tok, path):
    """Each story as <s> story </s>, concatenated: (n_tokens,) uint16."""
    ids = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line:
            ids += [tok.bos] + tok.encode(line) + [tok.eos]
    return np.array(ids, dtype=np.uint16)


def batch(data, rng, bsz, seq):
    starts = rng.integers(0, len(data) - seq - 1, size=bsz)
    x = np.stack([data[s:s + seq + 1] for s in starts]).astype(np.int64)
    return torch.from_numpy(x[:, :-1]), torch.from_numpy(x[:, 1:])


@torch.no_grad()
def evaluate(model, data, seq, max_windows=64, bf16=False):
    """Mean next-token loss over consecutive windows of the held-out stream (the curve's points; eval.py
    computes the reported numbers in f32 from the exported f16 weights)."""
    model.eval()
    n = min(max_windows, (len(data) - 1) // seq)
    x = torch.from_numpy(data[:n * seq + 1].astype(np.int64))
    xs, ys = x[:-1].view(n, seq), x[1:].view(n, seq)
    loss = 0.0
    for i in range(0, n, 16):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(xs[i:i + 16])
        loss += torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), ys[i:i + 16].flatten(),
                                                  reduction="sum").item()
    model.train()
    return loss / (n * seq)


def lr_at(step, args, elapsed=0.0):
    """Linear warmup, then cosine to 10% at the last step — or at --max-minutes, whichever comes first."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = (step - args.warmup) / max(1, args.steps - args.warmup)
    if args.max_minutes:
        p = max(p, elapsed / (args.max_minutes * 60))
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def plot(log, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not found: no loss.png")
        return
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot([r["tokens"] / 1e6 for r in log["train"]], [r["loss"] for r in log["train"]], label="train", lw=1)
    ax.plot([r["tokens"] / 1e6 for r in log["valid"]], [r["loss"] for r in log["valid"]], "o-", label="held-out", ms=3)
    ax.set_xlabel("tokens seen (millions)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def export(model, c, args, tok_dir):
    os.makedirs(args.out, exist_ok=True)
    save_safetensors(os.path.join(args.out, "model.safetensors"), hf_state(model), "F16")
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(hf_config(c), f, indent=2)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2, "max_length": c["max_pos"]}, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.bin"):
        if os.path.exists(os.path.join(tok_dir, name)):  # tokenizer.bin: tokenizer dirs made before it was written lack one
            shutil.copy(os.path.join(tok_dir, name), os.path.join(args.out, name))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), required=True)
    ap.add_argument("--out", required=True, help="export directory")
    ap.add_argument("--corpus", default=".tmp/train/corpus")
    ap.add_argument("--tokenizer", default=".tmp/train/tokenizer")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bf16", action="store_true",
                    help="bf16 autocast for the matmuls (f32 master weights, optimizer and loss): on a CPU with "
                         "AVX512_BF16 oneDNN runs them 5-8x faster than Debian torch's f32 OpenBLAS path")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--init-from", default="", help="continue from an exported model (a second phase): its weights "
                    "and train_log.json; the optimizer starts afresh")
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="time budget: stop after this long, the schedule annealing by then (0: none). "
                         "Weights are then reproducible only on a machine as fast.")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    tok = Tokenizer(args.tokenizer)
    train = encode_file(tok, os.path.join(args.corpus, "train.txt"))
    valid = encode_file(tok, os.path.join(args.corpus, "valid.txt"))
    c = dict(PRESETS[args.preset], vocab=len(tok.vocab), max_pos=512, eps=1e-5, rope_theta=10000.0)
    model = Llama(c)
    os.makedirs(args.out, exist_ok=True)
    print(f"{args.preset}: {model.num_params():,} params; train {len(train):,} tokens, held-out {len(valid):,}",
          flush=True)
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    log = {"args": vars(args), "config": c, "params": model.num_params(), "train": [], "valid": [], "phases": []}
    tokens, steps0, wall0 = 0, 0, 0.0
    if args.init_from:
        prev = json.load(open(os.path.join(args.init_from, "train_log.json")))
        assert prev["config"] == c, "--init-from must have the same shape"
        model.load_state_dict(load_hf(args.init_from).state_dict())
        log["train"], log["valid"] = prev["train"], prev["valid"]
        if "steps_done" not in prev:  # the checkpoint of a run stopped (killed) after an evaluation
            prev["steps_done"], prev["tokens_seen"] = len(prev["train"]), prev["train"][-1]["tokens"]
            prev["wall_s"] = prev.get("eval_wall_s", 0.0)
            prev["phases"] = (prev.get("phases") or []) + [{"args": prev["args"], "steps": prev["steps_done"],
                "tokens": prev["tokens_seen"] - sum(p["tokens"] for p in prev.get("phases") or []),
                "wall_s": prev["wall_s"] - sum(p["wall_s"] for p in prev.get("phases") or []), "stopped": True}]
        log["phases"] = prev.get("phases") or [{"args": prev["args"], "steps": prev["steps_done"],
                                                 "tokens": prev["tokens_seen"], "wall_s": prev["wall_s"]}]
        tokens, steps0, wall0 = prev["tokens_seen"], prev["steps_done"], prev["wall_s"]
        print(f"continuing from {args.init_from}: {steps0} steps, {tokens:,} tokens done", flush=True)
    t0, step = time.time(), 0
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args, time.time() - t0)
        x, y = batch(train, rng, args.batch, args.seq)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += x.numel()
        log["train"].append({"step": steps0 + step, "tokens": tokens, "loss": loss.item()})
        last = step == args.steps - 1
        out_of_time = args.max_minutes and time.time() - t0 > args.max_minutes * 60
        if step % args.eval_every == 0 or last or out_of_time:
            v = evaluate(model, valid, args.seq, bf16=args.bf16)
            log["valid"].append({"step": steps0 + step, "tokens": tokens, "loss": v})
            print(f"step {step} tokens {tokens:,} loss {loss.item():.4f} held-out {v:.4f} ppl {math.exp(v):.3f} "
                  f"lr {opt.param_groups[0]['lr']:.2e} {time.time() - t0:.0f}s", flush=True)
            log["eval_wall_s"] = wall0 + time.time() - t0  # (for --init-from of a run stopped after this)
            with open(os.path.join(args.out, "train_log.json"), "w") as f:
                json.dump(log, f)
            # A checkpoint at every evaluation: a run cut off early still leaves a usable export.
            export(model, c, args, args.tokenizer)
        if out_of_time:
            print(f"stopped early at step {step} (--max-minutes {args.max_minutes})", flush=True)
            break
    log["phases"].append({"args": vars(args), "steps": step + 1, "tokens": tokens - sum(p["tokens"] for p in log["phases"]),
                          "wall_s": time.time() - t0})
    log["wall_s"] = wall0 + time.time() - t0
    log["tokens_seen"] = tokens
    log["steps_done"] = steps0 + step + 1
    export(model, c, args, args.tokenizer)
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(log, f)
    plot(log, os.path.join(args.out, "loss.png"),
         f"flotilla-stories {args.preset} ({model.num_params() / 1e6:.2f}M params)")
    print(f"done in {log['wall_s'] / 60:.1f} min; exported to {args.out}", flush=True)


if __name__ == "__main__":
    main()
