#!/usr/bin/env python3
"""Byte-fallback BPE, SentencePiece/Llama style, trained on the story corpus in pure Python.

    /usr/bin/python3 tools/train/train_tokenizer.py --corpus .tmp/train/corpus/train.txt \
        --out .tmp/train/tokenizer --vocab-size 1024

Writes tokenizer.json (Hugging Face: model BPE, byte_fallback, the Prepend("▁") + Replace(" ", "▁")
normalizer and the decoder chain of Llama's tokenizer.json) and tokenizer_config.json.

Vocabulary order, as in Llama: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then every character of the
corpus (most frequent first), then one token per merge in the order learned. Training splits the text
into chunks ("▁" + a run of letters, one digit, or a run of punctuation) so that no merge crosses a word
or a letter/punctuation boundary; applying the merges by rank to the whole string, as tokenizers does,
then gives the same tokens as applying them chunk by chunk.
"""
import argparse
import collections
import json
import os
import re

SPACE = "\u2581"  # ▁
CHUNK = re.compile(r"▁?[^\W\d_]+|▁?\d|▁?[^\w\s▁]+|▁|\s|_+")


def normalize(text):
    return SPACE + text.replace(" ", SPACE)


def train(text, vocab_size, min_freq=2):
    norm = " ".join(normalize(line) for line in text.splitlines() if line)
    words = collections.Counter(m.group(0) for m in CHUNK.finditer(norm) if not m.group(0).isspace())
    chars = collections.Counter()
    for w, c in words.items():
        for ch in w:
            chars[ch] += c
    vocab = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    vocab += [ch for ch, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))]
    seqs = [[list(w), c] for w, c in words.items()]
    merges = []
    while len(vocab) < vocab_size:
        pairs = collections.Counter()
        for syms, c in seqs:
            for a, b in zip(syms, syms[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), n = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if n < min_freq:
            break
        merges.append((a, b))
        vocab.append(a + b)
        for item in seqs:
            item[0] = merge_pair(item[0], a, b)
    return vocab, merges


def merge_pair(syms, a, b):
    out, i = [], 0
    while i < len(syms):
        if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(syms[i])
            i += 1
    return out


class Tokenizer:
    """Encoder equal to tokenizers' BPE for this tokenizer.json (used by train.py and eval.py)."""

    def __init__(self, path):
        tj = json.load(open(os.path.join(path, "tokenizer.json"), encoding="utf-8"))
        self.vocab = tj["model"]["vocab"]
        self.inv = {i: t for t, i in self.vocab.items()}
        merges = [m.split(" ") if isinstance(m, str) else m for m in tj["model"]["merges"]]
        self.ranks = {tuple(m): r for r, m in enumerate(merges)}
        self.cache = {}
        self.bos, self.eos = 1, 2

    def _piece(self, piece):
        if piece in self.cache:
            return self.cache[piece]
        syms = list(piece)
        while len(syms) > 1:
            best = min(((self.ranks.get(p, 1 << 30), p) for p in zip(syms, syms[1:])))
            if best[0] == 1 << 30:
                break
            syms = merge_pair(syms, *best[1])
        ids = []
        for s in syms:
            if s in self.vocab:
                ids.append(self.vocab[s])
            else:
                ids += [3 + b for b in s.encode("utf-8")]
        self.cache[piece] = ids
        return ids

    def encode(self, text):
        # No merge contains "▁" except at its start, so pieces split before each "▁" encode independently.
        ids = []
        for piece in re.findall(r"▁[^▁]*|[^▁]+", normalize(text)):
            ids += self._piece(piece)
        return ids

    def decode(self, ids):
        out, pending = [], b""
        for i in ids:
            t = self.inv[i]
            if re.fullmatch(r"<0x[0-9A-F]{2}>", t):
                pending += bytes([int(t[3:5], 16)])
                continue
            if pending:
                out.append(pending.decode("utf-8", "replace"))
                pending = b""
            if i in (0, 1, 2):
                continue
            out.append(t)
        if pending:
            out.append(pending.decode("utf-8", "replace"))
        s = "".join(out).replace(SPACE, " ")
        return s[1:] if s.startswith(" ") else s


def tokenizer_json(vocab, merges):
    special = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i, t in enumerate(["<unk>", "<s>", "</s>"])]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": special,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SPACE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": {t: i for i, t in enumerate(vocab)},
                  "merges": [f"{a} {b}" for a, b in merges]},
    }


def tokenizer_config(max_len):
    added = {str(i): {"content": t, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True} for i, t in enumerate(["<unk>", "<s>", "</s>"])}
    return {
        "add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": added,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
        "clean_up_tokenization_spaces": False, "legacy": True, "model_max_length": max_len,
        "sp_model_kwargs": {}, "tokenizer_class": "LlamaTokenizer",
        # A story model has no chat format: the conversation becomes the start of a story.
        "chat_template": "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% if not loop.last %} {% endif %}{% endfor %}",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=".tmp/train/corpus/train.txt")
    ap.add_argument("--out", default=".tmp/train/tokenizer")
    ap.add_argument("--vocab-size", type=int, default=1024)
    ap.add_argument("--max-len", type=int, default=512)
    args = ap.parse_args()
    text = open(args.corpus, encoding="utf-8").read()
    vocab, merges = train(text, args.vocab_size)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as fh:
        json.dump(tokenizer_json(vocab, merges), fh, ensure_ascii=False, indent=1)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as fh:
        json.dump(tokenizer_config(args.max_len), fh, ensure_ascii=False, indent=2)
    tok = Tokenizer(args.out)
    sample = text.splitlines()[0]
    ids = tok.encode(sample)
    assert tok.decode(ids) == sample, "round trip failed"
    print(f"vocab {len(vocab)} ({len(merges)} merges); first story: {len(sample)} chars -> {len(ids)} tokens")


if __name__ == "__main__":
    main()
