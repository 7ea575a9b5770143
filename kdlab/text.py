"""Character-level text corpora: real text that is always there, or any UTF-8 file.

The default corpus is CPython's own reference documentation, `pydoc_data.topics.topics`: about
80 help topics, roughly 465,000 characters of English prose and Python code, installed with
every Python, so no download is needed. Characters are the tokens (about 100 symbols). The split
is fixed: the first 90% of the text trains, the last 10% validates (the topics are joined in
name order, so the validation text is a handful of topics the models never saw).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["CharCorpus", "CorpusError", "DEFAULT_CORPUS", "load_corpus", "pydoc_text"]

DEFAULT_CORPUS = "pydoc-text"
VALIDATION_FRACTION = 0.1


class CorpusError(ValueError):
    """A text file that cannot serve as a corpus: missing, empty, binary or not UTF-8."""


@dataclass(frozen=True)
class CharCorpus:
    """A text as character ids: `vocabulary[i]` is the character with id i."""

    name: str
    vocabulary: str
    train: torch.Tensor  # int64 ids, the first 90% of the text
    validation: torch.Tensor  # int64 ids, the last 10%
    fingerprint: str  # identifies the text, so a cached teacher is never reused on another one

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def encode(self, text: str) -> torch.Tensor:
        """Character ids of `text`; characters outside the vocabulary raise ValueError."""
        index = {character: i for i, character in enumerate(self.vocabulary)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(f"characters {''.join(unknown)!r} are not in the {self.name} vocabulary; "
                             "use characters that occur in the corpus")
        return torch.tensor([index[character] for character in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.vocabulary[i] for i in torch.as_tensor(ids).tolist())


def pydoc_text() -> str:
    """CPython's help topics (what `help('with')` shows), joined in topic-name order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name].strip() for name in sorted(topics))


def read_text_file(path) -> str:
    """The file's text; a clear CorpusError for a missing, empty, binary or non-UTF-8 file."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"no text file at {path}; pass the path of a UTF-8 text file")
    data = path.read_bytes()
    if b"\x00" in data:
        raise CorpusError(f"{path} looks binary (it contains NUL bytes); pass a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorpusError(f"{path} is not UTF-8 text (bad byte at offset {error.start}); "
                          "convert it to UTF-8 or pass another file") from None
    if not text.strip():
        raise CorpusError(f"{path} is empty; pass a file with some text in it")
    return text


def load_corpus(path=None, *, validation_fraction: float = VALIDATION_FRACTION) -> CharCorpus:
    """The pydoc corpus, or the UTF-8 text file at `path`, as a character corpus with a fixed split."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must lie strictly between 0 and 1, got {validation_fraction!r}")
    text = pydoc_text() if path is None else read_text_file(path)
    name = DEFAULT_CORPUS if path is None else Path(path).stem
    split = round(len(text) * (1 - validation_fraction))
    if split < 2 or len(text) - split < 2:
        raise CorpusError(f"the text has only {len(text)} characters, too few to split into training and "
                          "validation text; use a longer text")
    vocabulary = "".join(sorted(set(text)))
    index = {character: i for i, character in enumerate(vocabulary)}
    ids = torch.tensor([index[character] for character in text], dtype=torch.long)
    return CharCorpus(name=name, vocabulary=vocabulary, train=ids[:split], validation=ids[split:],
                      fingerprint=hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])
