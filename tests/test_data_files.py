"""kdlab.data's handling of the dataset files users copy in by hand: a bad one is reported, and
nothing half-written is left behind to be mistaken for data on the next run."""

import gzip

import pytest

from kdlab.data import DatasetUnavailable, _decompress_idx_files, load_dataset

IDX_NAMES = [f"{split}-{kind}-ubyte" for split in ("train", "t10k")
             for kind in ("images-idx3", "labels-idx1")]


def _truncated_gzip():
    # mtime=0: the header holds the time, and every pytest-xdist worker must build the same bytes
    packed = gzip.compress(bytes(range(256)) * 64, mtime=0)
    return packed[: len(packed) // 2]


@pytest.mark.parametrize("content", [b"not gzip at all", _truncated_gzip()],
                         ids=["not gzip", "truncated gzip"])
def test_a_bad_gzip_leaves_no_partial_file_and_the_error_propagates(tmp_path, content):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(content)
    with pytest.raises((OSError, EOFError)):
        _decompress_idx_files(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["train-images-idx3-ubyte.gz"]


def test_a_bad_gzip_is_reported_as_corrupt_and_the_next_run_says_so_again(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in IDX_NAMES:
        (raw / f"{name}.gz").write_bytes(b"\x1f\x8b broken")
    for _ in range(2):  # no 0-byte leftover turns the second run's error into something else
        with pytest.raises(DatasetUnavailable, match="incomplete or corrupted"):
            load_dataset("mnist", tmp_path, offline=True)
        assert not list(raw.glob("*.part")) and not (raw / IDX_NAMES[0]).exists()
