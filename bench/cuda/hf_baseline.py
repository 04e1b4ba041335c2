#!/usr/bin/env python3
"""The baseline bench/cuda/run.ts compares against (the vLLM paper's): batched greedy generation of a
random-weight Llama with TinyLlama-1.1B shapes in bf16 on the GPU, through Hugging Face
transformers `generate` when transformers is importable, else a plain PyTorch Llama loop with a
KV cache. Prints one line per batch size, and with --json a last line {"impl", "results": {batch: tok/s}}
where tok/s counts prompt-conditioned new tokens over the whole generate call (prefill included).

  python3 bench/cuda/hf_baseline.py [--layers 22] [--prompt 32] [--new 128] [--batches 1,32,256] [--json]
"""
import argparse
import json
import sys
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--layers", type=int, default=22)
p.add_argument("--prompt", type=int, default=32)
p.add_argument("--new", type=int, default=128)
p.add_argument("--batches", default="1,32,256")
p.add_argument("--json", action="store_true")
a = p.parse_args()
DIM, HIDDEN, HEADS, KV_HEADS, VOCAB = 2048, 5632, 32, 4, 32000
dev = torch.device("cuda")
torch.manual_seed(0)


def hf_model():
    from transformers import LlamaConfig, LlamaForCausalLM  # noqa: raises ImportError when absent

    cfg = LlamaConfig(hidden_size=DIM, intermediate_size=HIDDEN, num_hidden_layers=a.layers, num_attention_heads=HEADS,
                      num_key_value_heads=KV_HEADS, vocab_size=VOCAB, max_position_embeddings=2048, tie_word_embeddings=False)
    m = LlamaForCausalLM(cfg).to(dtype=torch.bfloat16, device=dev).eval()

    def gen(ids):
        return m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=a.new, min_new_tokens=a.new,
                          do_sample=False, pad_token_id=0)
    return "transformers.generate", gen


def torch_model():
    hd = DIM // HEADS
    w = lambda *s: (torch.randn(*s, device=dev) * 0.02).to(torch.bfloat16)
    layers = [dict(wq=w(DIM, DIM), wk=w(KV_HEADS * hd, DIM), wv=w(KV_HEADS * hd, DIM), wo=w(DIM, DIM),
                   w1=w(HIDDEN, DIM), w2=w(DIM, HIDDEN), w3=w(HIDDEN, DIM)) for _ in range(a.layers)]
    emb, out = w(VOCAB, DIM), w(VOCAB, DIM)
    inv = 1.0 / (10000 ** (torch.arange(0, hd, 2, device=dev).float() / hd))

    def norm(x):
        return (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype)

    def rope(x, pos):  # x (B, H, T, hd), half layout
        f = torch.outer(pos.float(), inv)
        cos, sin = torch.cat([f.cos(), f.cos()], -1).to(x.dtype), torch.cat([f.sin(), f.sin()], -1).to(x.dtype)
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    @torch.no_grad()
    def gen(ids):
        B = ids.shape[0]
        cache = [[None, None] for _ in layers]
        toks, start = ids, 0
        for _ in range(a.new):
            T = toks.shape[1]
            pos = torch.arange(start, start + T, device=dev)
            x = emb[toks]
            for L, c in zip(layers, cache):
                h = norm(x)
                q = (h @ L["wq"].T).view(B, T, HEADS, hd).transpose(1, 2)
                k = (h @ L["wk"].T).view(B, T, KV_HEADS, hd).transpose(1, 2)
                v = (h @ L["wv"].T).view(B, T, KV_HEADS, hd).transpose(1, 2)
                q, k = rope(q, pos), rope(k, pos)
                c[0] = k if c[0] is None else torch.cat([c[0], k], 2)
                c[1] = v if c[1] is None else torch.cat([c[1], v], 2)
                kk = c[0].repeat_interleave(HEADS // KV_HEADS, 1)
                vv = c[1].repeat_interleave(HEADS // KV_HEADS, 1)
                o = torch.nn.functional.scaled_dot_product_attention(q, kk, vv, is_causal=T > 1)
                x = x + o.transpose(1, 2).reshape(B, T, DIM) @ L["wo"].T
                h = norm(x)
                x = x + (torch.nn.functional.silu(h @ L["w1"].T) * (h @ L["w3"].T)) @ L["w2"].T
            nxt = (norm(x[:, -1]) @ out.T).argmax(-1, keepdim=True)
            start += T
            toks = nxt
        return toks
    return "pytorch-loop", gen


try:
    impl, gen = hf_model()
except ImportError:
    impl, gen = torch_model()
results = {}
for b in [int(x) for x in a.batches.split(",")]:
    ids = torch.randint(1, VOCAB, (b, a.prompt), device=dev)
    gen(ids[: min(b, 4)])  # warm-up
    torch.cuda.synchronize()
    t = time.perf_counter()
    gen(ids)
    torch.cuda.synchronize()
    results[b] = b * a.new / (time.perf_counter() - t)
    print(f"{impl} batch {b}: {results[b]:.0f} tok/s", file=sys.stderr)
if a.json:
    print(json.dumps({"impl": impl, "results": results}))
