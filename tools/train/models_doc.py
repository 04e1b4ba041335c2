"""docs/models.md, written by eval.py from its measurements (so the numbers in it are never retyped)."""


def _cmd(a):
    """The train.py command of every phase, with what it did."""
    out = []
    for ph in a["phases"]:
        g = ph["args"]
        out.append(f"# {ph['steps']} steps, {ph['tokens'] / 1e6:.2f} M tokens, {ph['wall_s'] / 60:.0f} min")
        out.append(f"nice -n 19 /usr/bin/python3 tools/train/train.py --preset {g['preset']} --out {g['out']} "
                   f"--steps {g['steps']} --lr {g['lr']:g}" + (f" --warmup {g['warmup']}" if g["warmup"] != 50 else "")
                   + (f" --seed {g['seed']}" if g["seed"] != 1234 else "")
                   + (f" --init-from {g['init_from']}" if g.get("init_from") else "")
                   + (f" --max-minutes {g['max_minutes']:g}" if g["max_minutes"] else ""))
    return "\n".join(out)


def _row(name, a):
    c = a["config"]
    return (f"| {name} | {a['params']:,} | {c['n_layers']} × {c['dim']}, {c['n_heads']} heads / {c['n_kv_heads']} KV, "
            f"FFN {c['hidden']} | {a['flops_per_token'] / 1e6:.2f} M | {a['bytes'] / 1e6:.2f} MB | "
            f"{a['tokens_seen'] / 1e6:.2f} M ({a['steps']} steps) | {a['wall_min']:.0f} min | "
            f"{a['final_train_loss']:.3f} | **{a['heldout_ppl']:.3f}** |")


def _quote(text):
    return "\n".join("> " + line for line in text.splitlines() or [""])


def write_doc(path, r, goldens):
    t, d, ag = r["target"], r["draft"], r["agreement"]
    samples = []
    for s in r["samples"]:
        title = f"prompt “{s['prompt']}”" if s["prompt"] else "no prompt (from `<s>` alone)"
        samples.append(f"#### {title}\n")
        for key, label in (("target_t0", "target, temperature 0"), ("target_t08", "target, temperature 0.8"),
                           ("draft_t0", "draft, temperature 0"), ("draft_t08", "draft, temperature 0.8")):
            samples.append(f"*{label}*\n\n{_quote(s[key])}\n")
    ratio = t["flops_per_token"] / d["flops_per_token"]
    text = f"""# Flotilla's own models: flotilla-stories

The repository ships a small trained Llama pair in `models/flotilla-stories/`, made entirely by the project
(corpus, tokenizer, weights) with the scripts in `tools/train/`, so a fresh checkout has a real model with
no download: `target/` is the model `npm start` and the examples serve by default, and `draft/` is its
speculative-decoding draft (same tokenizer).

Both are Hugging Face layout — `model.safetensors` (f16, `lm_head.weight` written out although tied),
`config.json` (`LlamaForCausalLM`), `generation_config.json`, `tokenizer.json`, `tokenizer_config.json` —
plus `tokenizer.bin`, the same vocabulary in llama2.c's format (merged tokens scored by rank; through the
engine's llama2.c reader it encodes the 400 held-out stories exactly as `tokenizer.json` does), and are
MIT-licensed like the rest of the repository: every word of the training text comes from the
project's own story grammar (`tools/train/make_corpus.py`).

**What they are good for.** They write short children's stories in the corpus's style, and they are the
real pair behind the speculative-decoding example and benchmark. The target's stories are fluent and it
mostly keeps the hero's name and pronouns through the story, though it still slips (“Anna climbed on
Anna's back” in the samples below); the draft writes the same sentences but loses track of who is who.
They know only the grammar's ~520 word forms and sentence shapes: a word outside them is split into
characters, and a prompt the grammar never produces (“Lily was sad because”) is closed off and a new
story starts.

## The pair

| model | parameters | shape | weight FLOPs / token | file | trained on | wall time | final train loss | held-out perplexity |
|---|---|---|---|---|---|---|---|---|
{_row("target", t)}
{_row("draft", d)}

Vocabulary {t['config']['vocab']} tokens; RoPE θ {t['config']['rope_theta']:g} (half-split, Hugging Face
layout), RMSNorm ε {t['config']['eps']:g}, SwiGLU, tied embeddings; trained on 256-token windows,
`max_position_embeddings` {t['config']['max_pos']} (stories are 130–225 tokens). The target does
{ratio:.1f}× the draft's weight FLOPs per token (attention over the context is extra and similar in both).
Held-out perplexity is over the {t['heldout_tokens']:,} tokens of the 400 held-out stories (each as
`<s> story </s>`), computed from the shipped f16 files.

**Draft/target agreement** — along the target's greedy output, how often the draft's greedy token is the
target's next token (the acceptance rate of greedy speculative decoding):
**{ag['rate'] * 100:.1f}%** over {ag['positions']:,} positions ({ag['sequences']} sequences: from `<s>` alone and
from the first four words of {ag['sequences'] - 1} held-out stories); from `<s>` alone
{ag['from_bos_rate'] * 100:.1f}% over {ag['from_bos_positions']} positions.

**Goldens** (`models/flotilla-stories/goldens.json`, checked by `test/integration/shipped-models.test.ts`):
the target's greedy text from `<s>` begins “{goldens['target_greedy_from_bos']['first_sentence']}”
The engine (native CPU backend, f16 weights) reproduced both models' whole greedy stories from `<s>`
character for character, and its draft/target agreement from `<s>` equals PyTorch's.

### Against the issue's targets

The issue asks for a target of roughly 5–20M parameters and a draft of about 1M. These were trained on
two CPU cores shared with five other engineers' builds and tests (load average mostly 5–17), no
GPU, in about 80 minutes of wall time all told. A first target of 2.2M parameters (preset `target-2m`,
5 × 192) ran at 4–8 s per step there and after 46 minutes (410 steps, 1.7M tokens) was still behind the
draft (held-out loss 0.657 nats/token against the draft's 0.50), so the shipped target is the
{t['params'] / 1e6:.1f}M-parameter preset `target`, which fits several times more steps in the same time;
the draft is {d['params'] / 1e6:.2f}M. The target does {ratio:.1f}× the draft's compute per token (the issue
asks for at least 5×). **Both are smaller than the issue asks.**

A second attempt at the issue's sizes did not beat this pair, so it is not shipped. A 4.88M-parameter
target (preset `target-5m`: 6 × 256, 8 heads / 4 KV, FFN 688; 9.75 M weight FLOPs per token) and a
0.85M draft (`draft-1m`: 3 × 128, 4 heads / 2 KV, FFN 384; 1.70 M, so 5.7×) on a 2,048-token vocabulary
of whole words and common pairs of lowercase words (5.33 characters per token, against 3.76 for the
1,024 vocabulary here) were trained side by side for 70 minutes with bf16 autocast, on the same two
shared cores (load average 13–20; for its first 25 minutes the target ran at 5–9 s per step, then about
0.8 s). The target saw 7.18M tokens (3,505 steps of 8 × 256), the draft 3.49M (851 steps of 16 × 256).
Measured by `eval.py` on the same 400 held-out stories — perplexity per token does not compare across
the two vocabularies, bits per character and per word of the same text do:

| model | parameters | vocabulary | held-out perplexity | bits / char | bits / word |
|---|---|---|---|---|---|
| target (shipped) | 1,115,520 | 1,024 | 1.379 | **0.1231** | 0.627 |
| draft (shipped) | 164,160 | 1,024 | 1.619 | 0.1846 | 0.941 |
| `target-5m` | 4,877,568 | 2,048 | 1.587 | 0.1251 | 0.637 |
| `draft-1m` | 852,864 | 2,048 | 1.583 | 0.1244 | 0.634 |

The new draft's greedy agreement with the new target, measured as below, is 89.2% over 5,705 positions
(41 sequences), and the new target's greedy story from `<s>` keeps its two characters straight (“…a
brave girl named Rosa. … One day, Amy the girl saw the teddy bear. … So she ran to Amy and said, "I am
sorry. Let us play together."”). But the 4.9M target ends 1.6% worse per character than the shipped
1.1M target, and no better than its own 0.85M draft (which needs 33% fewer bits per character than the
shipped draft). Its held-out loss had flattened from about step 1,800 on while its training loss kept
falling: at the end 0.46 nats per token on training windows against 0.49 on held-out windows measured
the same way (the shipped target: 0.35 and 0.35; the new draft 0.48 and 0.49). The target went over the
0.95M-token training split 7.6 times and began to fit it rather than the grammar. A next attempt wants
a larger corpus (the grammar makes as many stories as asked: `make_corpus.py --stories 40000`) as well
as more compute than two shared cores give in an hour — a GPU or an unshared machine. The presets,
the 2,048-token tokenizer (`train_tokenizer.py --vocab-size 2048`, which also writes llama2.c's
`tokenizer.bin`), `train.py --bf16` and `eval.py --previous` are in `tools/train/`; the commands were

```sh
/usr/bin/python3 tools/train/train_tokenizer.py --corpus .tmp/train/corpus/train.txt --out .tmp/train2/tokenizer --vocab-size 2048
nice -n 5 /usr/bin/python3 tools/train/train.py --preset target-5m --out .tmp/train2/target --tokenizer .tmp/train2/tokenizer --bf16 --batch 8 --steps 4000 --lr 0.002 --warmup 30 --eval-every 50 --max-minutes 70 &
nice -n 5 /usr/bin/python3 tools/train/train.py --preset draft-1m --out .tmp/train2/draft --tokenizer .tmp/train2/tokenizer --bf16 --batch 16 --steps 6000 --lr 0.003 --warmup 30 --eval-every 100 --max-minutes 70 &
wait
/usr/bin/python3 tools/train/eval.py --models .tmp/train2 --previous models/flotilla-stories --only-heldout
```

## Loss curves

![target loss](../models/flotilla-stories/target/loss.png)
![draft loss](../models/flotilla-stories/draft/loss.png)

`models/flotilla-stories/{{target,draft}}/loss.png`; the numbers behind them are in `train_log.json`
beside each model, and everything measured here is in `models/flotilla-stories/eval.json`.

## Samples

Temperature 0 is greedy; temperature 0.8 samples with PyTorch's generator seeded 7 (the engine's sampler
draws differently, so its 0.8 samples differ). Generation stops at `</s>`.

{chr(10).join(samples)}
## Reproducing

Everything runs on the CPU with Debian's PyTorch (`apt-get install python3-torch python3-matplotlib`;
no PyPI) from the repository root:

```sh
/usr/bin/python3 tools/train/make_corpus.py --out .tmp/train/corpus --stories 8000 --seed 1
/usr/bin/python3 tools/train/train_tokenizer.py --corpus .tmp/train/corpus/train.txt --out .tmp/train/tokenizer --vocab-size 1024
export OMP_NUM_THREADS=1
{_cmd(t)}
{_cmd(d)}
nice -n 19 /usr/bin/python3 tools/train/eval.py      # rewrites this page, goldens.json and eval.json
```

- **Corpus** (`make_corpus.py`): 8,000 seeded stories from a grammar of characters (40 names, people and
  18 animals), places, objects, feelings and five plots (problem → failed attempt → a friend's help →
  resolution → lesson) with quoted dialogue; 7,600 stories (5.0 MB) for training, every 20th story (400)
  held out. The corpus is not committed; the command regenerates it byte for byte.
- **Tokenizer** (`train_tokenizer.py`): byte-fallback BPE trained in pure Python, Llama-style: 3 special
  tokens (`<unk>` 0, `<s>` 1, `</s>` 2), 256 byte tokens `<0x00>`–`<0xFF>`, the corpus's characters, then
  merges (never across a space or a letter/punctuation boundary). `tokenizer.json` has Llama's
  normalizer (prepend `▁`, spaces to `▁`), decoder and post-processor (BOS added), so
  `@huggingface/tokenizers` and the engine encode exactly as the Python trainer does (checked on all 400
  held-out stories). `tokenizer_config.json` carries a minimal chat template (the messages joined as
  the start of a story).
- **Training** (`train.py`, model in `llama.py`): AdamW (β 0.9/0.95, weight decay 0.1 on matrices),
  batch 16 × 256 tokens, linear warmup then cosine decay to 10%, gradient clipping 1.0, seeded (corpus
  windows and initialisation). With `--max-minutes` the schedule anneals by that deadline and training
  stops there, so on a slower machine the weights differ; without it, a run is reproducible on the same
  torch build. The `Llama` module reproduces the shared stories260K-hf model's greedy tokens exactly
  when loaded from its safetensors, which checks the HF conventions (half-split RoPE, GQA, tensor names).
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
