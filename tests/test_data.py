"""kdlab.data: digits split and scaling, transfer subsets, batching, and torchvision datasets read
from tiny files written in torchvision's own layouts (no network here, and none needed)."""

import gzip
import hashlib
import pickle
import struct
import subprocess
import sys
from urllib.error import URLError

import numpy as np
import pytest
import torch

from kdlab.data import DATASETS, DatasetUnavailable, TensorData, download, load_dataset, make_loader


@pytest.fixture
def torchvision_datasets():
    """torchvision.datasets, imported only by the tests that use it: every test process collects this file, and
    the import costs each about 2 s of CPU."""
    import torchvision.datasets

    return torchvision.datasets


def toy_data(n=23, num_classes=4):
    """Inputs whose first pixel is the example's index, so batches can be traced back."""
    inputs = torch.zeros(n, 1, 2, 2)
    inputs[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32)
    labels = torch.arange(n) % num_classes
    return TensorData(inputs, labels, tuple("abcdefghij"[:num_classes]), "toy")


def example_ids(batches):
    return sorted(int(i) for x, _ in batches for i in x[:, 0, 0, 0])


# --- digits -----------------------------------------------------------------------------------


def test_digits_shapes_and_split_sizes(digits):
    train, test = digits
    assert (len(train), len(test)) == (1297, 500)
    assert train.inputs.shape == (1297, 1, 8, 8) and test.inputs.shape == (500, 1, 8, 8)
    assert train.inputs.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert train.input_shape == (1, 8, 8) and train.num_classes == 10
    assert train.classes == tuple(str(d) for d in range(10)) and train.name == "digits"
    assert train.nbytes == 1297 * 64 * 4 + 1297 * 8
    # Stratified: each digit makes up the same share of both splits (within one example).
    train_share = torch.bincount(train.labels, minlength=10) / len(train)
    test_share = torch.bincount(test.labels, minlength=10) / len(test)
    assert torch.allclose(train_share, test_share, atol=1 / 500)


def test_digits_standardised_with_train_statistics(digits):
    train, test = digits
    assert abs(train.inputs.mean().item()) < 1e-5
    assert train.inputs.std().item() == pytest.approx(1.0, abs=1e-3)
    # The test split uses the train statistics, so it is close to, but not exactly, standardised.
    assert abs(test.inputs.mean().item()) < 0.1 and test.inputs.mean().item() != pytest.approx(0, abs=1e-5)


def test_digits_split_is_seeded(digits):
    train, test = digits
    again_train, again_test = load_dataset("digits", seed=0)
    assert torch.equal(train.inputs, again_train.inputs) and torch.equal(test.labels, again_test.labels)
    other_train, _ = load_dataset("digits", seed=1)
    assert not torch.equal(train.inputs, other_train.inputs)


def test_the_stored_digits_split_is_scikit_learns_and_spares_its_import(digits):
    """Seed 0's split is read from kdlab/digits_split.json: it must be the one scikit-learn's stratified
    train_test_split draws (scripts/digits_split.py writes it again), and reading it must not import scikit-learn."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(bunch.data / 16.0, bunch.target, test_size=500,
                                                        random_state=0, stratify=bunch.target)
    mean, std = x_train.mean(), x_train.std()
    train, test = digits
    for ours, theirs, labels in ((train, x_train, y_train), (test, x_test, y_test)):
        expected = torch.tensor((theirs - mean) / std, dtype=torch.float32).reshape(-1, 1, 8, 8)
        assert torch.equal(ours.inputs, expected) and torch.equal(ours.labels, torch.as_tensor(labels))
    check = "import sys; from kdlab.data import load_dataset; load_dataset('digits'); print('sklearn' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "False", "loading the digits imported scikit-learn"


# --- subsets ----------------------------------------------------------------------------------


def test_subset_is_stratified_and_seeded(digits):
    train, _ = digits
    subset = train.subset(100, seed=3)
    assert len(subset) == 100 and subset.classes == train.classes
    assert torch.bincount(subset.labels, minlength=10).tolist() == [10] * 10
    assert torch.equal(subset.inputs, train.subset(100, seed=3).inputs)
    assert not torch.equal(subset.inputs, train.subset(100, seed=4).inputs)
    counts = torch.bincount(train.subset(25, seed=3).labels, minlength=10)
    assert counts.sum() == 25 and counts.max() - counts.min() == 1


def test_subset_examples_come_from_the_dataset_with_their_labels():
    data = toy_data(40)
    subset = data.subset(12, seed=0)
    ids = subset.inputs[:, 0, 0, 0].long()
    assert len(set(ids.tolist())) == 12
    assert torch.equal(subset.labels, data.labels[ids])


def test_subset_balances_as_far_as_class_sizes_allow():
    # Class 0 has 2 examples, classes 1 and 2 have 10 each: 12 examples -> 2, 5, 5.
    labels = torch.tensor([0] * 2 + [1] * 10 + [2] * 10)
    data = TensorData(torch.randn(22, 1, 1, 1), labels, ("a", "b", "c"), "uneven")
    assert torch.bincount(data.subset(12).labels).tolist() == [2, 5, 5]


def test_subset_excludes_classes_by_index_or_name(digits):
    train, _ = digits
    no_threes = train.subset(exclude_classes=[3])
    assert 3 not in no_threes.labels.tolist()
    assert len(no_threes) == len(train) - int((train.labels == 3).sum())
    assert no_threes.num_classes == 10  # the student still has an output for the missing class
    by_name = train.subset(90, exclude_classes=["3"], seed=1)
    assert torch.bincount(by_name.labels, minlength=10).tolist() == [10, 10, 10, 0, 10, 10, 10, 10, 10, 10]
    assert torch.equal(by_name.inputs, train.subset(90, exclude_classes=[3], seed=1).inputs)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"n": 0}, "between 1 and"),
        ({"n": 24}, "between 1 and 23"),
        ({"n": 18, "exclude_classes": [0]}, "between 1 and 17"),
        ({"exclude_classes": [4]}, "unknown class index 4"),
        ({"exclude_classes": ["z"]}, "unknown class 'z'"),
    ],
)
def test_subset_rejects_bad_requests(arguments, message):
    with pytest.raises(ValueError, match=message):
        toy_data(23).subset(**arguments)


# --- batches and loaders ------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_every_example_once_per_epoch(shuffle):
    data = toy_data(23)
    batches = list(data.batches(5, shuffle=shuffle, generator=torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in batches] == [5, 5, 5, 5, 3]
    assert example_ids(batches) == list(range(23))
    for x, y in batches:  # each input still travels with its own label
        assert torch.equal(y, data.labels[x[:, 0, 0, 0].long()])
    order = [int(i) for x, _ in batches for i in x[:, 0, 0, 0]]
    assert (order == list(range(23))) == (not shuffle)


def test_batches_shuffle_is_seeded():
    data = toy_data(23)

    def order(seed):
        generator = torch.Generator().manual_seed(seed)
        return [x[:, 0, 0, 0].tolist() for x, _ in data.batches(4, shuffle=True, generator=generator)]

    assert order(0) == order(0)
    assert order(0) != order(1)


def test_make_loader_on_device_path_reshuffles_each_epoch_and_is_seeded():
    data = toy_data(23)
    loader = make_loader(data, 5, shuffle=True, device="cpu", seed=7)
    assert len(loader) == 5
    epochs = [[x[:, 0, 0, 0].tolist() for x, _ in loader] for _ in range(2)]
    assert all(sorted(sum(epoch, [])) == list(range(23)) for epoch in epochs)
    assert epochs[0] != epochs[1]
    repeat = make_loader(data, 5, shuffle=True, device="cpu", seed=7)
    assert [[x[:, 0, 0, 0].tolist() for x, _ in repeat] for _ in range(2)] == epochs


def test_make_loader_dataloader_path_yields_the_same_examples():
    data = toy_data(23)
    loader = make_loader(data, 5, shuffle=True, device="cpu", seed=7, max_device_bytes=0)
    assert isinstance(loader.loader, torch.utils.data.DataLoader)
    assert len(loader) == 5
    first, second = ([x[:, 0, 0, 0].tolist() for x, _ in loader] for _ in range(2))
    assert sorted(sum(first, [])) == list(range(23)) == sorted(sum(second, []))
    assert first != second  # a new order every epoch
    for x, y in loader:
        assert torch.equal(y, data.labels[x[:, 0, 0, 0].long()])
    repeat = make_loader(data, 5, shuffle=True, device="cpu", seed=7, max_device_bytes=0)
    assert [x[:, 0, 0, 0].tolist() for x, _ in repeat] == first
    in_order = make_loader(data, 5, shuffle=False, device="cpu", max_device_bytes=0)
    assert [int(i) for x, _ in in_order for i in x[:, 0, 0, 0]] == list(range(23))



@pytest.mark.parametrize("max_device_bytes", [2**30, 0], ids=["on-device", "dataloader"])
def test_make_loader_slices_extras_in_step_with_the_examples(max_device_bytes):
    data = toy_data(23)
    cached = data.inputs[:, 0, 0, 0] * 10  # stands in for cached teacher logits, one row per example
    loader = make_loader(data, 5, shuffle=True, device="cpu", seed=3, max_device_bytes=max_device_bytes,
                         extras=(cached,))
    seen = 0
    for x, y, extra in loader:
        assert torch.equal(extra, x[:, 0, 0, 0] * 10)
        seen += len(y)
    assert seen == 23


# --- torchvision datasets from tiny files ---------------------------------------------------------


def write_idx(path, array, compress=False):
    """An IDX file as LeCun published it: magic 0x0000 08 ndim (uint8), big-endian sizes, raw bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    (gzip.open if compress else open)(path, "wb").write(header + array.astype(np.uint8).tobytes())


def write_mnist_layout(raw, rng, compress=False):
    raw.mkdir(parents=True)
    split_arrays = {}
    for split, n in (("train", 6), ("t10k", 4)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(raw / f"{split}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(raw / f"{split}-labels-idx1-ubyte{suffix}", labels, compress)
        split_arrays[split] = images, labels
    return split_arrays


@pytest.mark.parametrize(
    "name, folder, first_class",
    [("mnist", "MNIST", "0 - zero"), ("Fashion_MNIST", "FashionMNIST", "T-shirt/top")],
)
@pytest.mark.parametrize("compress", [False, True])
def test_mnist_style_files_round_trip(tmp_path, name, folder, first_class, compress):
    arrays = write_mnist_layout(tmp_path / folder / "raw", np.random.default_rng(0), compress)
    train, test = load_dataset(name, root=tmp_path, offline=True)
    train_pixels = arrays["train"][0] / 255.0
    mean, std = train_pixels.mean(), train_pixels.std(ddof=1)
    for data, (images, labels) in ((train, arrays["train"]), (test, arrays["t10k"])):
        assert data.inputs.shape == (len(labels), 1, 28, 28) and data.inputs.dtype == torch.float32
        expected = (images / 255.0 - mean) / std
        np.testing.assert_allclose(data.inputs[:, 0].numpy(), expected, rtol=1e-4, atol=1e-4)
        assert data.labels.dtype == torch.int64 and data.labels.tolist() == labels.tolist()
        assert data.classes[0] == first_class and data.num_classes == 10


def write_cifar_layout(folder, rng):
    """cifar-10-batches-py: pickled dicts, rows of 3072 bytes (all red, then green, then blue)."""
    folder.mkdir(parents=True)
    batches = {}
    for filename in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=2).tolist()
        (folder / filename).write_bytes(pickle.dumps({"data": data, "labels": labels}))
        batches[filename] = data, labels
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return batches


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch, torchvision_datasets):
    """Tiny CIFAR-10 files, with torchvision's published MD5s swapped for theirs.

    torchvision checks every CIFAR file against the published MD5 before reading it. The test
    replaces the expected checksums (class attributes, for this test only) instead of skipping
    the check, so the real integrity check still runs on the tiny files.
    """
    folder = tmp_path / "cifar-10-batches-py"
    batches = write_cifar_layout(folder, np.random.default_rng(1))

    def md5(filename):
        return hashlib.md5((folder / filename).read_bytes()).hexdigest()

    cifar = torchvision_datasets.CIFAR10
    monkeypatch.setattr(cifar, "train_list", [[f, md5(f)] for f, _ in cifar.train_list])
    monkeypatch.setattr(cifar, "test_list", [[f, md5(f)] for f, _ in cifar.test_list])
    monkeypatch.setattr(cifar, "meta", {**cifar.meta, "md5": md5("batches.meta")})
    return tmp_path, batches


def test_cifar10_files_round_trip(tiny_cifar):
    root, batches = tiny_cifar
    train, test = load_dataset("CIFAR-10", root=root, offline=True)
    assert train.inputs.shape == (10, 3, 32, 32) and test.inputs.shape == (2, 3, 32, 32)
    assert train.inputs.is_contiguous()
    train_pixels = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)]).reshape(-1, 3, 32, 32) / 255.0
    mean = train_pixels.mean(axis=(0, 2, 3), keepdims=True)
    std = train_pixels.std(axis=(0, 2, 3), ddof=1, keepdims=True)
    test_pixels = batches["test_batch"][0].reshape(-1, 3, 32, 32) / 255.0
    np.testing.assert_allclose(train.inputs.numpy(), (train_pixels - mean) / std, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(test.inputs.numpy(), (test_pixels - mean) / std, rtol=1e-4, atol=1e-4)
    assert train.labels.tolist() == sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert test.labels.tolist() == batches["test_batch"][1]
    assert train.classes[:2] == ("airplane", "automobile") and train.name == "cifar10"


def test_corrupted_cifar10_file_is_reported(tiny_cifar):
    root, _ = tiny_cifar
    with open(root / "cifar-10-batches-py" / "data_batch_3", "ab") as batch:
        batch.write(b"x")
    with pytest.raises(DatasetUnavailable, match="incomplete or corrupted"):
        load_dataset("cifar10", root=root, offline=True)


# --- missing data and bad names -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, folder",
    [("mnist", "MNIST/raw"), ("fashion-mnist", "FashionMNIST/raw"), ("cifar10", "cifar-10-batches-py")],
)
def test_offline_missing_dataset_fails_fast_with_advice(tmp_path, monkeypatch, torchvision_datasets, name, folder):
    def no_network(self):
        raise AssertionError("offline loading tried to download")

    monkeypatch.setattr(torchvision_datasets.MNIST, "download", no_network)
    monkeypatch.setattr(torchvision_datasets.CIFAR10, "download", no_network)
    with pytest.raises(DatasetUnavailable) as error:  # at once: the patched download would fail the test
        load_dataset(name, root=tmp_path, offline=True)
    message = str(error.value)
    assert f"{tmp_path / folder}" in message
    assert f"python -m kdlab download {name} --data-root {tmp_path}" in message


def test_failed_download_becomes_a_short_dataset_unavailable(tmp_path, monkeypatch, torchvision_datasets):
    def unreachable(self):
        raise URLError("no route to host")

    monkeypatch.setattr(torchvision_datasets.MNIST, "download", unreachable)
    with pytest.raises(DatasetUnavailable) as error:
        load_dataset("mnist", root=tmp_path)
    message = str(error.value)
    assert "no route to host" in message and "python -m kdlab download mnist" in message
    assert "--offline" in message and "digits" in message
    assert error.value.__suppress_context__  # raised `from None`: no chained traceback
    with pytest.raises(DatasetUnavailable, match="could not download MNIST"):
        download("mnist", root=tmp_path)


def test_download_of_files_already_present_returns_their_folder(tmp_path):
    write_mnist_layout(tmp_path / "MNIST" / "raw", np.random.default_rng(2))
    assert download("mnist", root=tmp_path) == tmp_path / "MNIST" / "raw"


@pytest.mark.parametrize(
    "alias, canonical",
    [("fashion_mnist", "fashion-mnist"), ("fashionmnist", "fashion-mnist"), ("FashionMNIST", "fashion-mnist"),
     ("cifar-10", "cifar10"), ("CIFAR10", "cifar10"), (" MNIST ", "mnist")],
)
def test_aliases_name_the_canonical_dataset(tmp_path, alias, canonical):
    with pytest.raises(DatasetUnavailable, match=f"python -m kdlab download {canonical} "):
        load_dataset(alias, root=tmp_path, offline=True)


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'.*" + ".*".join(DATASETS)):
        load_dataset("svhn")
    with pytest.raises(ValueError, match="nothing to download"):
        download("digits")


@pytest.mark.parametrize("name", [None, 3, ["digits"]])
def test_a_dataset_name_that_is_not_text_lists_the_choices(name):
    with pytest.raises(TypeError, match=rf"^the dataset name must be a string, one of {', '.join(DATASETS)}; got "):
        load_dataset(name)


@pytest.mark.parametrize("arguments, error, message", [
    ({"n": "10"}, TypeError, r"^n must be a whole number or None, got '10'$"),
    ({"n": True}, TypeError, r"^n must be a whole number or None, got True$"),
    ({"n": 2.5}, TypeError, r"^n must be a whole number or None, got 2\.5$"),
    ({"exclude_classes": [1.5]}, ValueError, r"^unknown class 1\.5; toy has classes \('a', 'b', 'c', 'd'\)"),
    ({"exclude_classes": [True]}, ValueError, r"^unknown class True; toy has classes"),
    ({"exclude_classes": [None]}, ValueError, r"^unknown class None; toy has classes"),
])
def test_subset_refuses_what_is_not_a_count_or_a_class(arguments, error, message):
    with pytest.raises(error, match=message):
        toy_data(23).subset(**arguments)


@pytest.mark.parametrize("batch_size, error", [(0, ValueError), (-4, ValueError), ("8", TypeError), (2.0, TypeError)])
def test_batch_sizes_must_be_whole_numbers_of_at_least_one(batch_size, error):
    message = rf"^batch_size must be a whole number of at least 1, got {batch_size!r}$"
    with pytest.raises(error, match=message):
        make_loader(toy_data(), batch_size, shuffle=True, device="cpu")
    with pytest.raises(error, match=message):
        toy_data().batches(batch_size, shuffle=False)
