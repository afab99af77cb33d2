"""The passages of a teacher's context that one question needs (`teacher.context_passages`).

A teacher given a knowledge document pays for the whole document in every call (prompt tokens), and a small teacher
given a long one mixes its facts up. With `context_passages: k` the teacher is the model given, per request, the
document's opening passage and the k passages most similar to the request's question, in the document's order: a
retrieval-augmented teacher over the same document. k = 0 (or a document of at most k + 1 passages) gives the whole
document, as before.

Passages: the document is split at blank lines into paragraphs; a paragraph whose lines are list items (`- `, `* `,
`1. `) gives one passage per item, any other paragraph is one passage. The first passage (the opening: who the
teacher is, what the document is about) is always kept. Similarity is the cosine of TF-IDF vectors (scikit-learn,
English stop words removed) fitted on the passages; passages with no word in common with the question are never
chosen, so a question the document does not speak to gets the opening alone.
"""
from __future__ import annotations

import re
from functools import lru_cache

_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


def passages(document: str) -> list[str]:
    """The document's passages, in order (see the module docstring); a line after a list item that is not an item
    itself continues that item."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", document.strip()):
        block: list[str] = []
        for ln in (ln.rstrip() for ln in para.splitlines() if ln.strip()):
            if _ITEM.match(ln):
                if block:
                    out.append("\n".join(block))
                block = [ln]
            else:
                block.append(ln)
        if block:
            out.append("\n".join(block))
    return out


class ContextIndex:
    """One document's passages, ready to answer `for_question`."""

    def __init__(self, document: str, k: int):
        self.document, self.k = document, k
        self.parts = passages(document)
        self._vec = self._matrix = None
        if k > 0 and len(self.parts) > k + 1:
            from sklearn.feature_extraction.text import TfidfVectorizer

            self._vec = TfidfVectorizer(stop_words="english", sublinear_tf=True)
            try:
                self._matrix = self._vec.fit_transform(self.parts[1:])
            except ValueError:  # no word left after stop words: nothing to rank by
                self._vec = None

    @property
    def whole(self) -> bool:
        """True when every question gets the whole document."""
        return self._vec is None

    def chosen(self, question: str) -> list[int]:
        """Indices (into `parts`) of the passages a question gets: 0, then the top k by similarity, in order."""
        if self._vec is None:
            return list(range(len(self.parts)))
        sims = (self._matrix @ self._vec.transform([question]).T).toarray().ravel()
        ranked = sorted((i for i in range(len(sims)) if sims[i] > 0), key=lambda i: (-sims[i], i))[: self.k]
        return [0] + sorted(i + 1 for i in ranked)

    def for_question(self, question: str) -> str:
        """The context for one question: the opening and its k passages, joined by newlines (or the document)."""
        if self._vec is None:
            return self.document
        return "\n".join(self.parts[i] for i in self.chosen(question))


@lru_cache(maxsize=8)
def index(document: str, k: int) -> ContextIndex:
    """A cached index per (document, k): a run builds it once."""
    return ContextIndex(document, k)
