"""Chinese text as the store and the reference data compare it: simplified, folded, cut into grams.

Traditional characters are converted to simplified ones (OpenCC's ``t2s``), full-width forms to
their ASCII twins (NFKC), Latin letters to lower case. Grams are taken within *runs* of word
characters (CJK ideographs, letters, digits); punctuation and spaces cut runs and never enter
the index, so ``占道经营，影响通行`` gives the bigrams of ``占道经营`` and of ``影响通行`` only.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path
from typing import Any

import opencc

__all__ = ["bigrams", "index_terms", "normalise", "query_runs", "runs", "simplify", "sounds", "unigrams"]

MAX_INDEXED_CHARS = 5000
"""Text beyond this many characters (per field) is stored but not indexed: appeals are short, and a
pasted document should not cost thousands of index writes."""

PINYIN_FILE = Path(__file__).parent / "data" / "pinyin.txt"

_RUN = re.compile(r"[0-9a-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_SPACES = re.compile(r"\s+")


@functools.cache
def _converter() -> Any:
    return opencc.OpenCC("t2s")


@functools.cache
def _gb2312_changed() -> frozenset[str]:
    """The few GB2312 characters t2s still changes (後, 於, 乾 …): text without them needs no conversion."""
    chars = []
    for high in range(0xB0, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                chars.append(bytes((high, low)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    converted = str(_converter().convert("".join(chars)))
    return frozenset(a for a, b in zip(chars, converted, strict=False) if a != b)


def sounds(char: str) -> tuple[str, ...]:
    """The toneless pinyin readings of a simplified character (锦 and 金 both ``jin``; 长 ``chang``
    and ``zhang``), or the character itself when the table has none (a letter, a rare character):
    what a typo made with a pinyin input method keeps."""
    return _sound_table().get(char, (char,))


@functools.cache
def _sound_table() -> dict[str, tuple[str, ...]]:
    """Loaded on first use (~17,000 characters): only a name the matcher cannot otherwise agree on asks."""
    readings: dict[str, list[str]] = {}
    for line in PINYIN_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            syllable, chars = line.split("\t")
            for char in chars:
                readings.setdefault(char, []).append(syllable)
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}   # one tuple per set of readings: ~3 MB less
    return {char: shared.setdefault(tuple(found), tuple(found)) for char, found in readings.items()}


def simplify(text: str) -> str:
    """Traditional → simplified Chinese; everything else unchanged."""
    if not text:
        return ""
    try:
        text.encode("gb2312")
    except UnicodeEncodeError:
        pass  # characters outside simplified Chinese's basic set: convert
    else:
        # OpenCC in pure Python costs ~1 ms per 300 characters; most appeals are simplified already.
        if _gb2312_changed().isdisjoint(text):
            return text
    return str(_converter().convert(text))


_FULL_WIDTH = tuple((char, unicodedata.normalize("NFKD", char)) for char in "，：；！？（）\u3000")
"""Appeals' full-width punctuation, each with its compatibility decomposition (``，`` → ``,``)."""


MAX_CACHED_CHARS = 2000
"""Longest text :func:`_folded` keeps: appeals are a few hundred characters, and the cache must stay
small (2,048 entries) whatever a channel sends."""


def _folded(text: str) -> str:
    """NFKC-folded, lower-cased and simplified: what :func:`normalise` and :func:`runs` both start from.
    Cached: a case's title and content are folded by the classifier at ingest and again for its dedup
    signature, and by the index."""
    return _folded_cached(text) if len(text) <= MAX_CACHED_CHARS else _fold(text)


@functools.lru_cache(maxsize=2048)
def _folded_cached(text: str) -> str:
    return _fold(text)


def _fold(text: str) -> str:
    return simplify(_nfkc(text).lower())


def _nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, cheaper for most appeals: their full-width punctuation is
    replaced by its decomposition first, which leaves the text's NFKD, and so its NFKC, as they were;
    with nothing else to change, NFKC's quick check passes and it returns the text at once (~0.7 µs for
    70 characters, where normalising them costs ~6 µs)."""
    for wide, narrow in _FULL_WIDTH:
        text = text.replace(wide, narrow)
    return unicodedata.normalize("NFKC", text)


def normalise(text: str | None) -> str:
    """Simplified, NFKC-folded, lower-cased text without surrounding or inner whitespace."""
    if not text:
        return ""
    return _SPACES.sub("", _folded(text))


def runs(text: str | None, limit: int = MAX_INDEXED_CHARS) -> list[str]:
    """The word-character runs of ``text`` (normalised), at most ``limit`` characters read."""
    if not text:
        return []
    return _RUN.findall(_folded(text[:limit]))


def bigrams(text: str | None, limit: int = MAX_INDEXED_CHARS) -> set[str]:
    """Distinct character bigrams inside the runs of ``text``; a one-character run gives none."""
    grams: set[str] = set()
    for run in runs(text, limit):
        grams.update(run[i:i + 2] for i in range(len(run) - 1))
    return grams


def unigrams(text: str | None, limit: int = MAX_INDEXED_CHARS) -> set[str]:
    """Distinct characters inside the runs of ``text``."""
    return {char for run in runs(text, limit) for char in run}


def index_terms(title: str, content: str) -> tuple[set[str], set[str]]:
    """What the store indexes for a case: bigrams of title and content, and the title's characters."""
    title_runs, content_runs = runs(title), runs(content)
    grams = {run[i:i + 2] for run in (*title_runs, *content_runs) for i in range(len(run) - 1)}
    return grams, {char for run in title_runs for char in run}


def query_runs(text: str) -> list[str]:
    """The runs of a search text, as :func:`runs` cuts them (no length limit worth having)."""
    return runs(text, limit=1000)
