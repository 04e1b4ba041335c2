#!/usr/bin/env python3
"""Measure the shipped pair and write docs/models.md and models/flotilla-stories/goldens.json.

    nice -n 19 /usr/bin/python3 tools/train/eval.py --previous .tmp/previous-pair

(--previous: the pair this one replaced, measured alongside for docs/models.md's comparison table).

Reads the exported f16 weights back (so the numbers are those of the shipped files):
- held-out perplexity of each model: every held-out story as <s> story </s>, mean loss over its tokens;
  and the same total loss per character and per word of the text (bits), which compares across
  tokenizers — with --previous, for an earlier pair too (--only-heldout: just these numbers);
- the draft's greedy agreement with the target: the target decodes greedily (from <s> alone and from the
  first words of held-out stories), and at each position of that output we ask whether the draft's argmax
  is the target's next token (the acceptance rate of greedy speculative decoding);
- samples at temperature 0 and 0.8, and the goldens that test/integration/shipped-models.test.ts checks.
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama import generate, load_hf  # noqa: E402
from train_tokenizer import Tokenizer  # noqa: E402

PROMPTS = ["", "Once upon a time, there was a little dog named", "Tom found a shiny key", "Lily was sad because",
           "The sun was shining."]


@torch.no_grad()
def perplexity(model, stories, bsz=16):
    """(perplexity per token, tokens, total nats): every story as <s> story </s>, its tokens after <s>."""
    total, n = 0.0, 0
    for i in range(0, len(stories), bsz):
        rows = stories[i:i + bsz]
        t = max(len(r) for r in rows)
        x = torch.zeros(len(rows), t, dtype=torch.long)
        y = torch.full((len(rows), t), -100, dtype=torch.long)
        for j, r in enumerate(rows):
            x[j, :len(r)] = torch.tensor(r)
            y[j, :len(r) - 1] = torch.tensor(r[1:])
        total += F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-100, reduction="sum").item()
        n += int((y != -100).sum())
    return math.exp(total / n), n, total


def heldout(model, tok, lines):
    """Held-out quality in units that compare across tokenizers: the same nats divided by the text's
    characters (story text, the newline/</s> not counted) and by its words (whitespace-separated)."""
    stories = [[1] + tok.encode(l) + [2] for l in lines]
    ppl, n, nats = perplexity(model, stories)
    chars, words = sum(len(l) for l in lines), sum(len(l.split()) for l in lines)
    return {"heldout_ppl": ppl, "heldout_tokens": n, "heldout_chars": chars, "heldout_words": words,
            "bits_per_char": nats / math.log(2) / chars, "bits_per_word": nats / math.log(2) / words,
            "chars_per_token": chars / n, "story_tokens": [min(map(len, stories)), max(map(len, stories))]}


@torch.no_grad()
def agreement(target, draft, prompts, n_new):
    """(matches, positions): the draft's argmax against the target's greedy next token."""
    hit = pos = 0
    seqs = []
    for p in prompts:
        ids = generate(target, p, n_new)
        seqs.append(ids)
        x = torch.tensor([ids])
        pred = draft(x)[0].argmax(-1)  # prediction for position k+1 from the prefix 0..k
        for k in range(len(p) - 1, len(ids) - 1):
            hit += int(pred[k] == ids[k + 1])
            pos += 1
    return hit, pos, seqs


def first_sentence(text):
    for i, ch in enumerate(text):
        if ch in ".!?" and (i + 1 == len(text) or text[i + 1] == " ") and text[:i].count('"') % 2 == 0:
            return text[:i + 1]
    return text


def params(m):
    return sum(p.numel() for p in m.parameters())


def flops_per_token(m):
    """2 × (weights touched per token): every matrix but the embedding lookup, plus the tied classifier."""
    c = m.c
    return 2 * (params(m) - c["dim"] * (2 * c["n_layers"] + 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="models/flotilla-stories")
    ap.add_argument("--corpus", default=".tmp/train3/corpus/valid.txt",
                    help="the held-out split; train.txt beside it is counted for the doc")
    ap.add_argument("--doc", default="docs/models.md")
    ap.add_argument("--heldout-stories", type=int, default=400,
                    help="measure on the first N held-out stories (400: those every pair so far was measured on; 0: all)")
    ap.add_argument("--agree-stories", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--previous", default="", help="an earlier pair's directory, measured alongside for the doc")
    ap.add_argument("--only-heldout", action="store_true", help="print the held-out numbers and stop")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tdir, ddir = os.path.join(args.models, "target"), os.path.join(args.models, "draft")
    target, draft, tok = load_hf(tdir), load_hf(ddir), Tokenizer(tdir)
    lines = [l.strip() for l in open(args.corpus, encoding="utf-8") if l.strip()]
    # The corpus the doc describes: the held-out file and, beside it, the training split.
    corpus = {"heldout_stories": len(lines), "heldout_bytes": os.path.getsize(args.corpus)}
    train_txt = os.path.join(os.path.dirname(args.corpus), "train.txt")
    if os.path.exists(train_txt):
        corpus["train_stories"] = sum(1 for l in open(train_txt, encoding="utf-8") if l.strip())
        corpus["train_bytes"] = os.path.getsize(train_txt)
    lines = lines[:args.heldout_stories] if args.heldout_stories else lines
    corpus["measured_stories"] = len(lines)
    r = {"target": {}, "draft": {}, "corpus": corpus}
    for name, m, d in (("target", target, tdir), ("draft", draft, ddir)):
        log = json.load(open(os.path.join(d, "train_log.json")))
        phases = log.get("phases") or []
        if "steps_done" not in log:
            # The checkpoint of a run still going (or stopped by hand): no totals and no entry in `phases`
            # yet, so count its own phase from its last evaluation, as train.py --init-from does.
            log["steps_done"], log["tokens_seen"] = len(log["train"]), log["train"][-1]["tokens"]
            log["wall_s"] = log.get("eval_wall_s", 0.0)
            phases = phases + [{"args": log["args"], "steps": log["steps_done"] - sum(p["steps"] for p in phases),
                                "tokens": log["tokens_seen"] - sum(p["tokens"] for p in phases),
                                "wall_s": log["wall_s"] - sum(p["wall_s"] for p in phases), "stopped": True}]
        elif not phases:  # a log from before train.py recorded phases: one phase
            phases = [{"args": log["args"], "steps": log["steps_done"], "tokens": log["tokens_seen"],
                       "wall_s": log.get("wall_s", 0.0)}]
        r[name] = {"params": params(m), "flops_per_token": flops_per_token(m), **heldout(m, tok, lines),
                   "bytes": os.path.getsize(os.path.join(d, "model.safetensors")),
                   "tokens_seen": log["tokens_seen"], "steps": log["steps_done"], "wall_min": log["wall_s"] / 60,
                   "final_train_loss": sum(x["loss"] for x in log["train"][-20:]) / min(20, len(log["train"])),
                   "args": log["args"], "config": log["config"], "phases": phases}
        print(name, {k: v for k, v in r[name].items() if k not in ("args", "config")}, flush=True)
    if args.previous:  # the pair this one replaced, measured the same way on the same held-out text
        r["previous"] = {}
        for name in ("target", "draft"):
            d = os.path.join(args.previous, name)
            m = load_hf(d)
            r["previous"][name] = {"params": params(m), "flops_per_token": flops_per_token(m), "vocab": m.c["vocab"],
                                   "config": m.c, **heldout(m, Tokenizer(d), lines)}
            print("previous", name, r["previous"][name], flush=True)

    if args.only_heldout:
        return
    # Agreement: from <s> alone, then from the first four words of held-out stories.
    agree_prompts = [[1]] + [[1] + tok.encode(" ".join(l.split()[:4])) for l in lines[:args.agree_stories]]
    hit, pos, _ = agreement(target, draft, agree_prompts, 200)
    bos_hit, bos_pos, bos_seq = agreement(target, draft, [[1]], 200)
    r["agreement"] = {"matches": hit, "positions": pos, "rate": hit / pos, "sequences": len(agree_prompts),
                      "from_bos_rate": bos_hit / bos_pos, "from_bos_positions": bos_pos}
    print("agreement", r["agreement"], flush=True)

    gen = torch.Generator().manual_seed(args.seed)
    samples = []
    for p in PROMPTS:
        ids = [1] + (tok.encode(p) if p else [])
        row = {"prompt": p}
        for name, m in (("target", target), ("draft", draft)):
            row[f"{name}_t0"] = tok.decode(generate(m, ids, 220))
            row[f"{name}_t08"] = tok.decode(generate(m, ids, 220, temperature=0.8, gen=gen))
        samples.append(row)
    r["samples"] = samples

    greedy_text = tok.decode(bos_seq[0])
    goldens = {
        "note": "Written by tools/train/eval.py from the shipped f16 weights (PyTorch, f32 arithmetic).",
        "target_greedy_from_bos": {"ids": bos_seq[0][:65], "first_sentence": first_sentence(greedy_text)},
        "draft_greedy_from_bos": {"first_sentence": first_sentence(tok.decode(generate(draft, [1], 60)))},
        "agreement_from_bos": {"rate": bos_hit / bos_pos, "positions": bos_pos},
        "agreement": {"rate": hit / pos, "positions": pos},
        # 60 new tokens, as the test decodes
        "prompts": [{"prompt": p, "target_t0_first_sentence":
                     first_sentence(tok.decode(generate(target, [1] + tok.encode(p), 60)))} for p in PROMPTS if p],
    }
    with open(os.path.join(args.models, "goldens.json"), "w") as f:
        json.dump(goldens, f, indent=1)
    with open(os.path.join(args.models, "eval.json"), "w") as f:
        json.dump(r, f, indent=1)
    from models_doc import write_doc  # noqa: E402
    write_doc(args.doc, r, goldens)
    print("wrote", args.doc, flush=True)


if __name__ == "__main__":
    main()
