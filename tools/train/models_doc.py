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

Two further attempts at the issue's sizes did not beat this pair, so neither is shipped. In the second, a 4.88M-parameter
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
0.95M-token training split 7.6 times and began to fit it rather than the grammar. The presets,
the 2,048-token tokenizer (`train_tokenizer.py --vocab-size 2048`, which also writes llama2.c's
`tokenizer.bin`), `train.py --bf16` and `eval.py --previous` are in `tools/train/`; the commands were

```sh
/usr/bin/python3 tools/train/train_tokenizer.py --corpus .tmp/train/corpus/train.txt --out .tmp/train2/tokenizer --vocab-size 2048
nice -n 5 /usr/bin/python3 tools/train/train.py --preset target-5m --out .tmp/train2/target --tokenizer .tmp/train2/tokenizer --bf16 --batch 8 --steps 4000 --lr 0.002 --warmup 30 --eval-every 50 --max-minutes 70 &
nice -n 5 /usr/bin/python3 tools/train/train.py --preset draft-1m --out .tmp/train2/draft --tokenizer .tmp/train2/tokenizer --bf16 --batch 16 --steps 6000 --lr 0.003 --warmup 30 --eval-every 100 --max-minutes 70 &
wait
/usr/bin/python3 tools/train/eval.py --models .tmp/train2 --previous models/flotilla-stories --only-heldout
```

The third attempt took the same presets to a corpus five times larger: 40,000 stories
(`make_corpus.py --stories 40000 --seed 1`: 38,000 for training, 4.74M tokens with a 2,048-token tokenizer
trained the same way on it, 5.33 characters per token; the generator draws stories in sequence, so the first
400 of its 2,000 held-out stories are the 400 measured here). The two trainings started side by side on
the same two shared cores, each with `--threads 1`, bf16 autocast and its whole autogroup at nice 19
(`echo 19 > /proc/PID/autogroup`), for 110 minutes, while other engineers' benchmarks ran (load average
2–10; the target took 1 to 6 s per step). The target saw 8.38M tokens (4,094 steps of 8 × 256, 1.8
passes over the training split). The draft was stopped after its step-200 checkpoint to leave the target
the second core and continued from it (`--init-from`, a fresh optimizer, another seed) in a CPU cgroup
with `cpu.idle` set, so that it used only cycles nobody else wanted: 11.92M tokens in all (2,911 steps of
16 × 256, 93 minutes). Measured by `eval.py` on the same 400 held-out stories:

| model | parameters | vocabulary | held-out perplexity | bits / char | bits / word |
|---|---|---|---|---|---|
| target (shipped) | 1,115,520 | 1,024 | 1.379 | **0.1231** | 0.627 |
| draft (shipped) | 164,160 | 1,024 | 1.619 | 0.1846 | 0.941 |
| `target-5m`, third attempt | 4,877,568 | 2,048 | 1.581 | 0.1240 | 0.632 |
| `draft-1m`, third attempt | 852,864 | 2,048 | 1.569 | **0.1219** | 0.621 |

On all 2,000 held-out stories the order is the same (bits per character: new target 0.1236, shipped
target 0.1229, new draft 0.1218). This target no longer overfits — at the end its training loss and its
held-out loss on the same kind of windows were both 0.48 nats per token — but it is still 0.7% worse per
character than the shipped 1.1M target, so the shipped pair stays. Its held-out loss had flattened at
about 0.48 from step 2,800 on, with the learning rate already near its 10% floor, while its own 0.85M
draft, which saw 42% more tokens in batches twice as large, ended 1.0% better than the shipped target:
the first model at the issue's sizes to beat it. All of them are within 2% of each other per character,
which suggests they are close to what the grammar's own randomness allows (which name, object and plot
comes next cannot be predicted), so what separates them is how far each run converged rather than its
size. The new draft's greedy token matches the new target's 84.7% of the time over 5,402 positions (41
sequences), 84.2% over 139 from `<s>` alone; the engine (native CPU backend, f16) reproduces both models'
whole greedy stories from `<s>` token for token and that agreement exactly, and it encodes all 2,000
held-out stories with the new `tokenizer.json` and `tokenizer.bin` as the Python tokenizer does. The
new target's greedy story from `<s>` still mixes up its characters (“Just then, a tall girl named Anna
came by. … Anna told Anna about the toy car.”). A next attempt would give the target larger batches (16
or more windows) and more time than two shared cores leave, or a GPU. The commands were

```sh
/usr/bin/python3 tools/train/make_corpus.py --out .tmp/train3/corpus --stories 40000 --seed 1
/usr/bin/python3 tools/train/train_tokenizer.py --corpus .tmp/train3/corpus/train.txt --out .tmp/train3/tokenizer --vocab-size 2048
export OMP_NUM_THREADS=1   # each training started with setsid in the background, then: echo 19 > /proc/PID/autogroup
/usr/bin/python3 tools/train/train.py --preset target-5m --out .tmp/train3/target --corpus .tmp/train3/corpus --tokenizer .tmp/train3/tokenizer --bf16 --threads 1 --batch 8 --steps 100000 --lr 0.002 --warmup 100 --eval-every 100 --max-minutes 110 &
/usr/bin/python3 tools/train/train.py --preset draft-1m --out .tmp/train3/draft --corpus .tmp/train3/corpus --tokenizer .tmp/train3/tokenizer --bf16 --threads 1 --batch 16 --steps 100000 --lr 0.003 --warmup 100 --eval-every 200 --max-minutes 110 &
# after 8 minutes (step 200, its last checkpoint) the draft was stopped with kill and continued in a cpu.idle cgroup:
/usr/bin/python3 tools/train/train.py --preset draft-1m --out .tmp/train3/draft --init-from .tmp/train3/draft --corpus .tmp/train3/corpus --tokenizer .tmp/train3/tokenizer --bf16 --threads 1 --batch 16 --steps 100000 --lr 0.003 --warmup 30 --seed 1235 --eval-every 200 --max-minutes 85 &
wait
/usr/bin/python3 tools/train/eval.py --models .tmp/train3 --previous models/flotilla-stories --corpus .tmp/train3/corpus/valid.txt --only-heldout
/usr/bin/python3 tools/train/eval.py --models .tmp/train3 --previous models/flotilla-stories --corpus .tmp/train3/corpus/valid.txt --heldout-stories 0 --only-heldout
/usr/bin/python3 tools/train/eval.py --models .tmp/train3 --corpus .tmp/train3/corpus/valid.txt --doc .tmp/train3/models.md   # agreement (and a doc for that pair)
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
