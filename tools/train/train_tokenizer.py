#!/usr/bin/env python3
"""Byte-fallback BPE, SentencePiece/Llama style, trained on the story corpus in pure Python.

    /usr/bin/python3 tools/train/train_tokenizer.py --corpus .tmp/train/corpus/train.txt \
        --out .tmp/train/tokenizer --vocab-size 1024     # the shipped pair's (words only)
    ... --vocab-size 2048                                # words, then pairs of words (see below)

Writes tokenizer.json (Hugging Face: model BPE, byte_fallback, the Prepend("▁") + Replace(" ", "▁")
normalizer and the decoder chain of Llama's tokenizer.json), tokenizer_config.json, and tokenizer.bin
(llama2.c's format: the same vocabulary, merged tokens scored by rank). With --vocab-size 1024 the merges
are those of the first version of this script (byte for byte the same tokenizer.json).

Vocabulary order, as in Llama: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then every character of the
corpus (most frequent first), then one token per merge in the order learned.

Merges come in two phases: first inside words, then (only past the point where every word is one
token) joins of two words. Why word pairs: the story grammar has only ~520 word forms, so merges that stay inside a word stop at
~1,300 tokens (every word one token; ~1,900 with punctuation glued on). To use a vocabulary of a few
thousand, merges may also join two whole lowercase words ("▁played▁with", "▁felt▁very") — never more than
two words, never across punctuation, and never a capitalised word (names, "I"), so a prompt may end
before a name and the model still sees names as tokens of their own. Training splits the text into
chunks — a phrase (a run of words without punctuation) or a run of punctuation — and a merge is allowed
by its two halves alone (see allowed()), so applying the merges by rank to the whole string, as
tokenizers does with no pre-tokenizer, gives the same tokens as applying them chunk by chunk: no learned
merge joins a letter symbol to a punctuation symbol, and "▁" only ever merges with what follows it.
"""
import argparse
import collections
import heapq
import json
import os
import re

SPACE = "\u2581"  # ▁
# A phrase (words joined by "▁", letters only), one digit, a run of punctuation, or a lone "▁"/space/"_".
CHUNK = re.compile(r"(?:▁?[^\W\d_]+)+|▁?\d|▁?[^\w\s▁]+|▁|\s|_+")


def normalize(text):
    return SPACE + text.replace(" ", SPACE)


WORD = re.compile(r"▁?[^\W\d_]+|▁?\d|▁?[^\w\s▁]+|▁|\s|_+")  # one word, as the phase-1 merges see text


def allowed(a, b, words):
    """May a and b merge? Decided by the two symbols alone (so encoding by rank reproduces training).
    Inside a word: always, except onto a bare "▁" (which must join the letters after it first). Across a
    word boundary (b starts with "▁"): only two whole lowercase words, a and b both in `words`."""
    if b == SPACE:
        return False
    if not b.startswith(SPACE):
        return True
    return a in words and b in words


def bpe(seqs, counts, n_merges, ok, min_freq):
    """Byte-pair merges over chunk types (symbol lists, updated in place): the most frequent pair that
    ok(a, b) allows first (ties: smallest pair), kept incrementally — pair counts, which chunk types
    hold each pair, and a lazy max-heap of counts — so each merge touches only the chunks it changes."""
    pair_n = collections.Counter()
    where = collections.defaultdict(set)
    for i, syms in enumerate(seqs):
        for p in zip(syms, syms[1:]):
            if ok(*p):
                pair_n[p] += counts[i]
                where[p].add(i)
    heap = [(-n, p) for p, n in pair_n.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < n_merges and heap:
        negn, p = heapq.heappop(heap)
        if pair_n.get(p, 0) != -negn:
            continue  # stale heap entry
        if -negn < min_freq:
            break
        merges.append(p)
        touched = set()
        for i in list(where[p]):
            old = seqs[i]
            new = merge_pair(old, *p)
            for q in zip(old, old[1:]):
                if q in pair_n:
                    pair_n[q] -= counts[i]
                    where[q].discard(i)
                    touched.add(q)
            for q in zip(new, new[1:]):
                if ok(*q):
                    pair_n[q] += counts[i]
                    where[q].add(i)
                    touched.add(q)
            seqs[i] = new
        del pair_n[p], where[p]
        touched.discard(p)
        for q in touched:
            if pair_n[q] > 0:
                heapq.heappush(heap, (-pair_n[q], q))
    return merges


def train(text, vocab_size, min_freq=2, pairs=True):
    """Phase 1: merges inside single words until every word of the corpus is one token (or min_freq
    stops it). Phase 2 (pairs): merges of two whole lowercase words, over phrases (CHUNK) of phase-1
    tokens, until vocab_size. All phase-1 merges rank before phase-2 ones, so by-rank encoding agrees."""
    norm = " ".join(normalize(line) for line in text.splitlines() if line)
    chunks = collections.Counter(m.group(0) for m in CHUNK.finditer(norm) if not m.group(0).isspace())
    words_n = collections.Counter()
    for w, c in chunks.items():
        for m in WORD.finditer(w):
            words_n[m.group(0)] += c
    chars = collections.Counter()
    for w, c in words_n.items():
        for ch in w:
            chars[ch] += c
    vocab = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    vocab += [ch for ch, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))]
    wseqs = [list(w) for w in words_n]
    merges = bpe(wseqs, list(words_n.values()), vocab_size - len(vocab), lambda a, b: b != SPACE, min_freq)
    vocab += [a + b for a, b in merges]
    if pairs and len(vocab) < vocab_size:
        seg = dict(zip(words_n, wseqs))  # word -> its phase-1 tokens
        words = {w for w, syms in seg.items() if len(syms) == 1 and w.startswith(SPACE) and w[1:].isalpha()
                 and w[1:].islower()}
        pseqs = [[t for m in WORD.finditer(c) for t in seg[m.group(0)]] for c in chunks]
        more = bpe(pseqs, list(chunks.values()), vocab_size - len(vocab),
                   lambda a, b: allowed(a, b, words), min_freq)
        merges += more
        vocab += [a + b for a, b in more]
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
        # No merge joins two chunks (see the module docstring), so chunks encode independently.
        ids = []
        for m in CHUNK.finditer(normalize(text)):
            ids += self._piece(m.group(0))
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


def tokenizer_bin(vocab, merges, path):
    """llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, UTF-8
    bytes, with " " for "▁" (as llama2.c's export writes it). run.c merges the adjacent pair whose
    concatenation is in the vocabulary with the highest score, so a merged token scores -(its rank): the
    same order as the merges of tokenizer.json. Specials, bytes and characters score 0 (never a merge)."""
    import struct
    rank = {a + b: r for r, (a, b) in enumerate(merges)}
    pieces = [t.replace(SPACE, " ").encode("utf-8") for t in vocab]
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p in pieces)))
        for t, p in zip(vocab, pieces):
            f.write(struct.pack("<fi", -float(rank[t]) if t in rank else 0.0, len(p)) + p)


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
    ap.add_argument("--vocab-size", type=int, default=2048)
    ap.add_argument("--no-pairs", action="store_true", help="merges stay inside a word (as the first 1024 tokenizer)")
    ap.add_argument("--max-len", type=int, default=512)
    args = ap.parse_args()
    text = open(args.corpus, encoding="utf-8").read()
    vocab, merges = train(text, args.vocab_size, pairs=not args.no_pairs)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as fh:
        json.dump(tokenizer_json(vocab, merges), fh, ensure_ascii=False, indent=1)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as fh:
        json.dump(tokenizer_config(args.max_len), fh, ensure_ascii=False, indent=2)
    tokenizer_bin(vocab, merges, os.path.join(args.out, "tokenizer.bin"))
    tok = Tokenizer(args.out)
    sample = text.splitlines()[0]
    ids = tok.encode(sample)
    assert tok.decode(ids) == sample, "round trip failed"
    print(f"vocab {len(vocab)} ({len(merges)} merges); first story: {len(sample)} chars -> {len(ids)} tokens")


if __name__ == "__main__":
    main()
