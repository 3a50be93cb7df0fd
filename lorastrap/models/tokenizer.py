"""An offline CLIP tokenizer: byte-level vocabulary plus merges that make chosen words one token.

The real CLIP vocabulary cannot be downloaded here, and the model only needs *a* consistent
tokenizer. A vocabulary of the 256 byte-level symbols (and their end-of-word forms) tokenizes any
text; merges for each extra word (e.g. Danbooru tags of the lab world) make those words single
tokens, which keeps tags cleanly separable for a small text encoder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from lorastrap.kernel.atomic import atomic_write_text

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
EOW = "</w>"
# CLIP's pre-tokenizer: what the text is split into before byte-pair merging.
_PRETOKEN_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """The GPT-2/CLIP map from each byte to a printable unicode character."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def pretokens(text: str) -> list[str]:
    """Split text the way CLIP does before BPE (lower-cased, whitespace collapsed)."""
    import regex  # a transformers dependency; needed for \p{L}

    return regex.findall(_PRETOKEN_PATTERN, " ".join(text.lower().split()))


def _symbols(pretoken: str) -> list[str]:
    byte_map = bytes_to_unicode()
    chars = [byte_map[b] for b in pretoken.encode("utf-8")]
    chars[-1] += EOW
    return chars


def _apply_bpe(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Plain BPE: repeatedly merge the present pair with the lowest rank."""
    symbols = list(symbols)
    while len(symbols) > 1:
        pairs = [(ranks.get((a, b)), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
        known = [(r, i) for r, i in pairs if r is not None]
        if not known:
            break
        best = min(known)[0]
        merged: list[str] = []
        i = 0
        while i < len(symbols):
            if i + 1 < len(symbols) and ranks.get((symbols[i], symbols[i + 1])) == best:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def build_merges(words: Iterable[str]) -> list[tuple[str, str]]:
    """Merges that turn every pre-token of `words` into a single token.

    Merges are added left to right per word; a word that other words' merges split differently is
    repaired by appending merges of its leftover pieces. Appended merges have the lowest priority,
    so they cannot change a word that is already one token: the loop reaches a fixed point.
    """
    targets = sorted({p for w in words for p in pretokens(w) if len(_symbols(p)) > 1})
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}

    def add(pair: tuple[str, str]) -> None:
        if pair not in ranks:
            ranks[pair] = len(merges)
            merges.append(pair)

    for target in targets:
        symbols = _symbols(target)
        acc = symbols[0]
        for sym in symbols[1:]:
            add((acc, sym))
            acc += sym
    while True:
        changed = False
        for target in targets:
            pieces = _apply_bpe(_symbols(target), ranks)
            if len(pieces) > 1:
                acc = pieces[0]
                for piece in pieces[1:]:
                    add((acc, piece))
                    acc += piece
                changed = True
        if not changed:
            return merges


def build_vocab(merges: Sequence[tuple[str, str]]) -> dict[str, int]:
    byte_symbols = list(bytes_to_unicode().values())
    tokens = byte_symbols + [s + EOW for s in byte_symbols]
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            tokens.append(a + b)
    tokens += [BOS, EOS]
    return {tok: i for i, tok in enumerate(tokens)}


def write_offline_clip_tokenizer(out_dir: Path, words: Sequence[str] = (), model_max_length: int = 77):
    """Write vocab.json, merges.txt and the tokenizer config into `out_dir`; return the loaded
    CLIPTokenizer. Each pre-token of each word in `words` becomes a single token."""
    from transformers import CLIPTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    merges = build_merges(words)
    vocab = build_vocab(merges)
    atomic_write_text(out_dir / "vocab.json", json.dumps(vocab, ensure_ascii=False))
    atomic_write_text(out_dir / "merges.txt", "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tokenizer = CLIPTokenizer(
        vocab=vocab,
        merges=list(merges),
        model_max_length=model_max_length,
    )
    # save_pretrained adds tokenizer.json and tokenizer_config.json (with model_max_length).
    tokenizer.save_pretrained(str(out_dir))
    return CLIPTokenizer.from_pretrained(str(out_dir), local_files_only=True)
