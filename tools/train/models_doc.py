"""docs/models.md, written by eval.py from its measurements (so the numbers in it are never retyped).

Numbers come from eval.py's results (`r`, also saved as eval.json) and each model's train_log.json (its
`phases`). The prose that no measurement backs is history (the earlier attempts, fixed numbers) or is
about the shipped pair's samples (checked against them when the pair was shipped) or about a check
outside eval.py (the engine's greedy output against PyTorch's, run when the pair was shipped).
"""

# train.py's argparse defaults, in the order its flags are printed; a phase's flag is written out unless
# its recorded value equals the default (keep in step with train.py), except the ALWAYS ones.
TRAIN_DEFAULTS = {"preset": None, "out": None, "init_from": "", "corpus": ".tmp/train/corpus",
                  "tokenizer": ".tmp/train/tokenizer", "bf16": False, "threads": 1, "batch": 16, "seq": 256,
                  "steps": 1500, "lr": 2e-3, "warmup": 50, "wd": 0.1, "seed": 1234, "eval_every": 100,
                  "max_minutes": 0}
ALWAYS = ("preset", "out", "batch", "threads", "steps", "lr")
EVAL_CMD = ("/usr/bin/python3 tools/train/eval.py --models models/flotilla-stories --previous .tmp/previous-pair "
            "--corpus .tmp/train3/corpus/valid.txt")


def _flags(g):
    out = []
    for k, default in TRAIN_DEFAULTS.items():
        v = g.get(k, default)
        if v == default and k not in ALWAYS:
            continue
        flag = "--" + k.replace("_", "-")
        out.append(flag if v is True else f"{flag} {v:g}" if isinstance(v, float) else f"{flag} {v}")
    return " ".join(out)


def _cmd(name, a):
    """The train.py command of every phase as its train_log.json recorded it, with what it did."""
    out, prev_out = [], None
    for i, ph in enumerate(a["phases"]):
        g = ph["args"]
        if g.get("init_from") and prev_out and g["init_from"] != prev_out:
            out.append(f"cp -r {prev_out} {g['init_from']}   # the previous phase's output, continued below")
        note = ""
        if ph.get("stopped"):  # its log ends at a checkpoint: killed there (or still running)
            note = f"; stopped by hand after its step-{ph['steps'] - 1} checkpoint"
            note += ", then continued" if i + 1 < len(a["phases"]) else ""
        out.append(f"# {name}, phase {i + 1}: {ph['steps']:,} steps of {g['batch']} × {g['seq']}, "
                   f"{ph['tokens'] / 1e6:.2f}M tokens, {ph['wall_s'] / 60:.0f} min{note}")
        out.append("/usr/bin/python3 tools/train/train.py " + _flags(g))
        prev_out = g["out"]
    return "\n".join(out)


def _row(name, a):
    c = a["config"]
    return (f"| {name} | {a['params']:,} | {c['n_layers']} × {c['dim']}, {c['n_heads']} heads / {c['n_kv_heads']} KV, "
            f"FFN {c['hidden']} | {a['flops_per_token'] / 1e6:.2f} M | {a['bytes'] / 1e6:.2f} MB | "
            f"{a['tokens_seen'] / 1e6:.2f} M ({a['steps']:,} steps, {_n_phases(a)}) | {a['wall_min']:.0f} min | "
            f"{a['final_train_loss']:.3f} | **{a['heldout_ppl']:.3f}** |")


def _cmp(name, a, vocab):
    return (f"| {name} | {a['params']:,} | {vocab:,} | {a['heldout_ppl']:.3f} | "
            f"{a['bits_per_char']:.4f} | {a['bits_per_word']:.3f} |")


def _less(new, old):
    """'3.1% fewer' / '0.7% more': new bits against old bits."""
    x = (new / old - 1) * 100
    return f"{abs(x):.1f}% {'more' if x > 0 else 'fewer'}"


def _quote(text):
    return "\n".join("> " + line for line in text.splitlines() or [""])


def _phase_words(ph):
    g = ph["args"]
    return (f"{ph['steps']:,} steps of {g['batch']} × {g['seq']} tokens ({ph['tokens'] / 1e6:.2f}M) at learning "
            f"rate {g['lr']:g} on {g['threads']} thread{'s' if g['threads'] > 1 else ''}, "
            f"{ph['wall_s'] / 60:.0f} minutes")


def _n_phases(a):
    n = len(a["phases"])
    return "one phase" if n == 1 else f"{n} phases"


def _issue(t, d, ratio):
    tp, dp = t["params"] / 1e6, d["params"] / 1e6
    tsize = ("within that range" if 5 <= tp <= 20 else "just under the 5M the range starts at" if tp >= 4.5
             else "below that range")
    dsize = "about 1M" if 0.7 <= dp <= 1.3 else "not about 1M"
    bf16 = all(ph["args"].get("bf16") for ph in t["phases"] + d["phases"])
    return f"""The issue asks for a target of roughly 5–20M parameters, as large as the training budget allows and
doing at least 5× the draft's compute per token, and a draft of roughly 1M. This target has
{t['params']:,} parameters ({tp:.2f}M, {tsize}) and this draft
{d['params']:,} ({dp:.2f}M, {dsize}); the target does {ratio:.1f}× the draft's weight FLOPs per token
({t['flops_per_token'] / 1e6:.2f}M against {d['flops_per_token'] / 1e6:.2f}M; the issue's 5× is {'met' if ratio >= 5 else '**not** met'}).

The budget was two CPU cores (AMD EPYC, Zen 5, with AVX-512 BF16) shared with other engineers' builds,
tests and benchmarks, and no GPU; {'every phase ran with bf16 autocast' if bf16 else 'not every phase used bf16'}
(`train.py --bf16`: bf16 matmuls through oneDNN, f32 master weights, optimizer and loss). The target
trained for {t['wall_min']:.0f} minutes ({_n_phases(t)}, {t['tokens_seen'] / 1e6:.2f}M tokens), the draft for
{d['wall_min']:.0f} minutes ({_n_phases(d)}, {d['tokens_seen'] / 1e6:.2f}M tokens).
Training time, not memory, is what limits the size here: a larger target sees fewer tokens in the same
hours, and (below) the 2.2M target of the first attempt and the 4.88M target of the third were both still
limited by how far their training got, not by their size."""


def _history(t, d, prev, measured):
    continued = len(t["phases"]) > 1
    text = """The first shipped pair was a 1.1M-parameter target (preset `target`, 5 × 128) and a 0.16M draft
(`draft`, 2 × 64) on a 1,024-token vocabulary (merges inside words only), trained on an 8,000-story
corpus (7,600 stories for training) in about 80 minutes all told, in f32. A first target of 2.2M
parameters (`target-2m`, 5 × 192) ran at 4–8 s per step on the shared cores and after 46 minutes (410
steps, 1.7M tokens) was still behind the draft (held-out loss 0.657 nats per token against the draft's 0.50), so the 1.1M target shipped,
smaller than the issue asks, with 6.8× its draft's weight FLOPs per token.

The second attempt trained the issue's sizes, the presets `target-5m` (6 × 256, 8 heads / 4 KV, FFN 688)
and `draft-1m` (3 × 128, 4 heads / 2 KV, FFN 384), on a 2,048-token vocabulary of the same 8,000-story
corpus, for 70 minutes with bf16 autocast. The target saw 7.18M tokens (3,505 steps of 8 × 256): 7.6 passes
over the 0.95M-token training split. It overfitted — its held-out loss was flat from about step 1,800 on
while its training loss kept falling, ending at 0.46 nats per token on training windows against 0.49 on
held-out ones — and measured 0.1251 bits per character, 1.6% worse than the shipped 1.1M target's 0.1231
and no better than its own draft (0.1244). Neither was shipped.

The third attempt took the same presets to a corpus five times larger, 40,000 stories (38,000 for
training: 4.74M tokens with the 2,048-token tokenizer trained on it). The target trained for 110 minutes,
8.38M tokens (4,094 steps of 8 × 256, 1.8 passes), beside the draft on the same two cores; the draft was
stopped after its step-200 checkpoint to leave the target the second core and continued from it
(`--init-from`: a fresh optimizer and warmup, another seed) in a CPU cgroup with `cpu.idle` set, so that it
used only cycles nobody else wanted: 11.92M tokens in all. The target no longer overfitted (0.48 nats per
token on training and on held-out windows alike) but its held-out loss had flattened at about 0.48 from
step 2,800 on, with the learning rate near its 10% floor, and it measured 0.1240 bits per character against
the shipped target's 0.1231 (0.7% worse), while its own 0.85M draft reached 0.1219."""
    if continued:
        more = "; then ".join(_phase_words(ph) for ph in t["phases"][1:])
        text += f"""

The target was therefore trained further from that checkpoint (`--init-from`, a fresh optimizer and
warmup): {more}. This pair is that target with the third attempt's draft."""
    else:
        text += "\n\nThis pair is the third attempt's target and draft as they are."
    if not prev:
        return text
    pt, pd = prev["target"], prev["draft"]
    vocab = t["config"]["vocab"]
    return text + f"""

Measured by `eval.py --previous` on the same {measured:,} held-out stories as this pair
(perplexity is per token, so it does not compare across the two vocabularies; bits per character and per
word of the same text do):

| model | parameters | vocabulary | held-out perplexity | bits / char | bits / word |
|---|---|---|---|---|---|
{_cmp("target (this pair)", t, vocab)}
{_cmp("draft (this pair)", d, vocab)}
{_cmp("target (previous pair)", pt, pt["vocab"])}
{_cmp("draft (previous pair)", pd, pd["vocab"])}

This target needs {_less(t['bits_per_char'], pt['bits_per_char'])} bits per character than the previous target
({_less(t['bits_per_word'], pt['bits_per_word'])} per word) and {_less(t['bits_per_char'], d['bits_per_char'])} than its own draft; this
draft needs {_less(d['bits_per_char'], pd['bits_per_char'])} than the previous draft."""


def write_doc(path, r, goldens):
    t, d, ag, corpus = r["target"], r["draft"], r["agreement"], r.get("corpus", {})
    ratio = t["flops_per_token"] / d["flops_per_token"]
    measured = corpus.get("measured_stories", 400)
    samples = []
    for s in r["samples"]:
        title = f"prompt “{s['prompt']}”" if s["prompt"] else "no prompt (from `<s>` alone)"
        samples.append(f"#### {title}\n")
        for key, label in (("target_t0", "target, temperature 0"), ("target_t08", "target, temperature 0.8"),
                           ("draft_t0", "draft, temperature 0"), ("draft_t08", "draft, temperature 0.8")):
            samples.append(f"*{label}*\n\n{_quote(s[key])}\n")
    cmds = "\n".join([_cmd("target", t), _cmd("draft", d)])
    later = ("; the target's continuation ran after the draft had finished, at autogroup nice 19 for its first 15 minutes, then nice 0 (sharing the cores with other engineers' work, and paused for their benchmarks, which its time budget counted)"
             if len(t["phases"]) > 1 else "")
    last_t, last_d = t["phases"][-1]["args"]["out"], d["phases"][-1]["args"]["out"]
    split = ""
    if "train_stories" in corpus:
        total = corpus["train_stories"] + corpus["heldout_stories"]
        split = (f": {total:,} of them,\n  {corpus['train_stories']:,} ({corpus['train_bytes'] / 1e6:.1f} MB) for training "
                 f"and every 20th story, {corpus['heldout_stories']:,} ({corpus['heldout_bytes'] / 1e6:.1f} MB), held out")
    text = f"""# Flotilla's own models: flotilla-stories

The repository ships a small trained Llama pair in `models/flotilla-stories/`, made entirely by the project
(corpus, tokenizer, weights) with the scripts in `tools/train/`, so a fresh checkout has a real model with
no download: `target/` is the model `npm start` and the examples serve by default, and `draft/` is its
speculative-decoding draft (same tokenizer).

Both are Hugging Face layout — `model.safetensors` (f16, `lm_head.weight` written out although tied),
`config.json` (`LlamaForCausalLM`), `generation_config.json`, `tokenizer.json`, `tokenizer_config.json` —
plus `tokenizer.bin`, the same vocabulary in llama2.c's format (merged tokens scored by rank; through the
engine's llama2.c reader it encodes all 2,000 held-out stories exactly as `tokenizer.json` does), and are
MIT-licensed like the rest of the repository: every word of the training text comes from the
project's own story grammar (`tools/train/make_corpus.py`).

**What they are good for.** They write short children's stories in the corpus's style, and they are the
real pair behind the speculative-decoding example and benchmark. They know only the grammar's words and
sentence shapes: a word outside them is split into smaller pieces, down to characters, and a prompt the
grammar never produces (“Lily was sad because” below) is not continued as a person would; the models fall
back into the grammar's sentences. Both sometimes lose track of who is who, for instance giving the friend
who comes to help the hero's own name (“Leo went to Leo the boy” in the samples below).

## The pair

| model | parameters | shape | weight FLOPs / token | file | trained on | wall time | final train loss | held-out perplexity |
|---|---|---|---|---|---|---|---|---|
{_row("target", t)}
{_row("draft", d)}

Vocabulary {t['config']['vocab']:,} tokens (whole words, then common pairs of lowercase words: {t['chars_per_token']:.2f}
characters per token of held-out text); RoPE θ {t['config']['rope_theta']:g} (half-split, Hugging Face layout),
RMSNorm ε {t['config']['eps']:g}, SwiGLU, tied embeddings; trained on 256-token windows,
`max_position_embeddings` {t['config']['max_pos']} (a held-out story is {t['story_tokens'][0]}–{t['story_tokens'][1]} tokens with
`<s>` and `</s>`). The target does {ratio:.1f}× the draft's weight FLOPs per token (attention over the
context is extra and similar in both). "Final train loss" is the mean over the last 20 steps (nats per
token). Held-out perplexity is over the {t['heldout_tokens']:,} tokens of the first {measured:,} held-out stories
(`eval.py --heldout-stories`, default 400; each story as `<s> story </s>`), computed from the shipped f16
files; they are also the 400 held-out stories of the 8,000-story corpus the earlier pairs were measured on,
because the generator draws stories in sequence.

**Draft/target agreement** — along the target's greedy output, how often the draft's greedy token is the
target's next token (the acceptance rate of greedy speculative decoding):
**{ag['rate'] * 100:.1f}%** over {ag['positions']:,} positions ({ag['sequences']} sequences: from `<s>` alone and
from the first four words of {ag['sequences'] - 1} held-out stories); from `<s>` alone
{ag['from_bos_rate'] * 100:.1f}% over {ag['from_bos_positions']} positions.

**Goldens** (`models/flotilla-stories/goldens.json`, checked by `test/integration/shipped-models.test.ts`):
the target's greedy text from `<s>` begins “{goldens['target_greedy_from_bos']['first_sentence']}”
The test has the engine (native CPU backend, f16 weights) write that sentence and the first 17 tokens from
`<s>`, the target's first sentence after two of the prompts below and the draft's first sentence from `<s>`,
and requires its draft/target agreement from `<s>` to be no more than 10 points below PyTorch's. When
this pair was shipped, the engine also wrote both models' whole greedy stories from `<s>` token for token
as PyTorch does, and its draft/target agreement along the target's story equalled PyTorch's
({ag['from_bos_rate'] * 100:.1f}%).

### Against the issue's targets

{_issue(t, d, ratio)}

### Earlier attempts

{_history(t, d, r.get('previous'), measured)}

## Speculative decoding with this pair

`npm run bench:spec-decode -- --sections shipped` runs greedy decoding with and without the draft on the
engine (both models f16 on the CPU, one thread). Measured when this pair was shipped (2 shared cores): one
stream 2,395 tok/s plain, 3,116 with k = 4 draft tokens per round (1.34x in wall time, 1.19x in CPU time;
the cost model predicted 1.23x from α 0.85 and the measured step costs), 2,746 with k = 2 (1.10x). With 8
streams plain batching already reaches 6,664 tok/s and speculation slows it (0.70x at k = 4): at these sizes
a step's fixed cost dominates, so the draft costs half a target step (c = 0.51) although it does a sixth of
the work, and a batch amortises the target's weights better than a draft does. The example
`examples/speculative.ts` serves the same pair as two deployments.

## Loss curves

![target loss](../models/flotilla-stories/target/loss.png)
![draft loss](../models/flotilla-stories/draft/loss.png)

`models/flotilla-stories/{{target,draft}}/loss.png`, through every phase (a continued run's log carries its
predecessor's); the numbers behind them are in `train_log.json` beside each model, and everything measured
here is in `models/flotilla-stories/eval.json`.

## Samples

Temperature 0 is greedy; temperature 0.8 samples with PyTorch's generator seeded 7 (the engine's sampler
draws differently, so its 0.8 samples differ). Generation stops at `</s>`.

{chr(10).join(samples)}
## Reproducing

Everything runs on the CPU with Debian's PyTorch (`apt-get install python3-torch python3-matplotlib`;
no PyPI) from the repository root. These are the commands as each model's `train_log.json` recorded them
(other flags at `train.py`'s defaults left out). The target's and the draft's first phases ran side by side,
each started in the background with its whole autogroup at nice 19 (`echo 19 > /proc/PID/autogroup`); the
draft's second phase ran in a CPU cgroup with `cpu.idle` set{later}. With `--max-minutes` the
schedule anneals by that deadline and training stops there, so on another machine, or under other load,
the weights differ.

```sh
/usr/bin/python3 tools/train/make_corpus.py --out .tmp/train3/corpus --stories 40000 --seed 1
/usr/bin/python3 tools/train/train_tokenizer.py --corpus .tmp/train3/corpus/train.txt --out .tmp/train3/tokenizer --vocab-size 2048
{cmds}
cp -r models/flotilla-stories .tmp/previous-pair   # the pair this one replaced (git history has it)
cp {last_t}/* models/flotilla-stories/target/ && cp {last_d}/* models/flotilla-stories/draft/
{EVAL_CMD}   # rewrites this page, goldens.json and eval.json
```

- **Corpus** (`make_corpus.py`): seeded stories from a grammar of characters (40 names, people and 18
  animals), places, objects, feelings and five plots (problem → failed attempt → a friend's help →
  resolution → lesson) with quoted dialogue{split}.
  The corpus is not committed; the command regenerates it byte for byte.
- **Tokenizer** (`train_tokenizer.py`): byte-fallback BPE trained in pure Python, Llama-style: 3 special
  tokens (`<unk>` 0, `<s>` 1, `</s>` 2), 256 byte tokens `<0x00>`–`<0xFF>`, the corpus's characters, then
  merges: first inside words (never across a letter/punctuation boundary), then joins of two whole
  lowercase words (“▁played▁with”; never a capitalised word, so names stay tokens of their own), up to
  {t['config']['vocab']:,} tokens. `tokenizer.json` has Llama's normalizer (prepend `▁`, spaces to `▁`), decoder and
  post-processor (BOS added), so `@huggingface/tokenizers` and the engine encode exactly as the Python
  trainer does (checked on all 2,000 held-out stories). `tokenizer_config.json` carries a minimal chat
  template (the messages joined as the start of a story).
- **Training** (`train.py`, model in `llama.py`): AdamW (β 0.9/0.95, weight decay 0.1 on matrices),
  batches of 256-token windows (sizes per phase above), bf16 autocast for the matmuls (`--bf16`: f32 master
  weights, optimizer and loss), linear warmup then cosine decay to 10% of the peak learning rate, gradient
  clipping 1.0, seeded (corpus windows and initialisation). `--init-from` continues an exported model (its
  weights and log; the optimizer and the schedule start afresh). The `Llama` module reproduces the shared
  stories260K-hf model's greedy tokens exactly when loaded from its safetensors, which checks the HF
  conventions (half-split RoPE, GQA, tensor names).
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
