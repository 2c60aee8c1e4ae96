"""Chunking: a document becomes overlapping pieces of at most ``size`` characters, each knowing the section
(Markdown heading path) it came from, so a hit can be cited as "docs/x.md § Heading".

Why characters and not tokens: the embedding model truncates at 256 word pieces (about 1,000 characters of
English); the default 800-character chunk stays under it without loading a tokenizer. Cuts fall on a
paragraph, line, sentence or word boundary when one lies in the last quarter of the window, so chunks seldom
split a word; the next chunk starts ``overlap`` characters before the cut.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_BREAKS = ("\n\n", "\n", ". ", " ")


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    section: str      # "Top > Sub" heading path, "" before the first heading
    start: int        # character offset in the document


def sections(text: str) -> list[tuple[str, int, str]]:
    """(heading path, offset, body) per Markdown section; headings inside code fences are not headings."""
    out: list[tuple[str, int, str]] = []
    path: list[tuple[int, str]] = []
    current, start, body = "", 0, []
    offset, fenced = 0, False
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line.rstrip("\n"))
        if match:
            if "".join(body).strip():
                out.append((current, start, "".join(body)))
            level = len(match.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level] + [(level, match.group(2))]
            current, start, body = " > ".join(title for _, title in path), offset, [line]
        else:
            body.append(line)
        offset += len(line)
    if "".join(body).strip():
        out.append((current, start, "".join(body)))
    return out


def split(text: str, size: int, overlap: int) -> list[tuple[int, str]]:
    """(offset, piece) windows of at most ``size`` characters, ``overlap`` characters shared between neighbours."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"chunk size {size} and overlap {overlap}: need size > 0 and 0 <= overlap < size")
    pieces: list[tuple[int, str]] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            floor = start + (3 * size) // 4
            for mark in _BREAKS:
                cut = text.rfind(mark, floor, end)
                if cut != -1:
                    end = cut + len(mark)
                    break
        piece = text[start:end]
        if piece.strip():
            pieces.append((start, piece.strip()))
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
        while start < end and not text[start - 1].isspace() and overlap:   # begin the overlap on a word
            start += 1
    return pieces


def chunk_document(text: str, size: int, overlap: int, *, markdown: bool = True) -> list[Chunk]:
    parts = sections(text) if markdown else [("", 0, text)]
    chunks: list[Chunk] = []
    for section, offset, body in parts:
        for start, piece in split(body, size, overlap):
            chunks.append(Chunk(len(chunks), piece, section, offset + start))
    return chunks
