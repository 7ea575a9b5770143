import pytest
import torch

from kdlab.text import CorpusError, load_corpus, pydoc_text


@pytest.fixture(scope="module")
def pydoc_corpus():
    return load_corpus()


def test_default_corpus_is_cpythons_help_text_split_90_10(pydoc_corpus):
    text = pydoc_text()
    assert 'The "with" statement' in text  # what help("with") shows: real text, not a stand-in
    assert len(text) > 100_000
    assert len(pydoc_corpus.train) + len(pydoc_corpus.validation) == len(text)
    assert len(pydoc_corpus.validation) == pytest.approx(0.1 * len(text), abs=1)
    assert pydoc_corpus.decode(pydoc_corpus.train[:500]) == text[:500]
    assert pydoc_corpus.decode(pydoc_corpus.validation[-500:]) == text[-500:]
    assert 60 <= pydoc_corpus.vocab_size <= 200
    assert pydoc_corpus.name == "pydoc-text"


def test_the_split_and_vocabulary_are_fixed(pydoc_corpus):
    again = load_corpus()
    assert again.vocabulary == pydoc_corpus.vocabulary
    assert again.fingerprint == pydoc_corpus.fingerprint
    assert torch.equal(again.validation, pydoc_corpus.validation)


def test_encode_decode_round_trip_and_unknown_characters(pydoc_corpus):
    prompt = "def __init__(self):"
    assert pydoc_corpus.decode(pydoc_corpus.encode(prompt)) == prompt
    with pytest.raises(ValueError, match="not in the pydoc-text vocabulary"):
        pydoc_corpus.encode("snowman \u2603")


def test_a_utf8_file_becomes_a_corpus(tmp_path):
    path = tmp_path / "poem.txt"
    text = "Ünïcode lines, and more lines.\n" * 20
    path.write_text(text, encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.name == "poem"
    assert corpus.vocabulary == "".join(sorted(set(text)))
    assert corpus.decode(torch.cat([corpus.train, corpus.validation])) == text
    assert corpus.fingerprint != load_corpus().fingerprint


@pytest.mark.parametrize("content, message", [
    (None, "no text file at"),
    (b"", "is empty"),
    (b"  \n\t\n", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks binary"),
    ("café".encode("latin-1"), "is not UTF-8 text"),
    (b"ab", "too few to split"),
])
def test_bad_files_give_a_clear_error(tmp_path, content, message):
    path = tmp_path / "input.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        load_corpus(path)


def test_a_folder_is_not_a_text_file(tmp_path):
    with pytest.raises(CorpusError, match="no text file at"):
        load_corpus(tmp_path)


def test_bad_validation_fraction():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        load_corpus(validation_fraction=1.0)
