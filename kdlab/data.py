"""Datasets as whole tensors: scikit-learn's embedded digits, and MNIST / Fashion-MNIST / CIFAR-10.

The datasets kdlab teaches with are small enough to hold in memory (and usually on the training
device), so a dataset is two tensors and a batch is a slice. That keeps a distillation epoch on
digits or MNIST fast on a laptop CPU and avoids DataLoader overhead on a GPU.

`digits` ships inside scikit-learn, so it works offline; the others come through torchvision and
need a download once (`python -m kdlab download NAME`) or a copied folder (see data/README.md).
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import json
import math
import numbers
import os
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["DATASETS", "DatasetUnavailable", "TensorData", "canonical_name", "download", "jitter", "load_dataset",
           "make_loader"]

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")

_ALIASES = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}

# torchvision's layout under the data root, and the names people know the datasets by.
_FOLDERS = {"mnist": "MNIST/raw", "fashion-mnist": "FashionMNIST/raw", "cifar10": "cifar-10-batches-py"}
_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}

# Download errors look different on every network failure; these are the ones torchvision lets
# through (URLError and gzip's BadGzipFile are OSErrors; MNIST wraps its mirror failures in a
# RuntimeError; a truncated archive raises EOFError or a TarError).
_LOAD_ERRORS = (OSError, RuntimeError, EOFError, tarfile.TarError)


def _is_whole(value) -> bool:
    """An int (numpy's too), not a bool: True would pass for 1 and 2.5 be cut to 2 without a word."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_batch_size(batch_size) -> None:
    message = f"batch_size must be a whole number of at least 1, got {batch_size!r}"
    if not _is_whole(batch_size):
        raise TypeError(message)
    if batch_size < 1:
        raise ValueError(message)


class DatasetUnavailable(RuntimeError):
    """A dataset is not on disk and cannot be downloaded; the message says how to get it."""


@dataclass
class TensorData:
    """A whole dataset as two tensors: small data lives on the training device, so batches are slices,
    not DataLoader round trips."""

    inputs: torch.Tensor  # float32, normalised, (n, C, H, W)
    labels: torch.Tensor  # int64, (n,)
    classes: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.inputs.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def nbytes(self) -> int:
        """Memory the tensors take: decides whether the data can live on the device."""
        return sum(t.element_size() * t.nelement() for t in (self.inputs, self.labels))

    def to(self, device) -> TensorData:
        """A TensorData on `device` (tensors already there are shared, as with Tensor.to)."""
        return dataclasses.replace(self, inputs=self.inputs.to(device), labels=self.labels.to(device))

    def subset(self, n: int | None = None, *, exclude_classes: Iterable[int | str] = (), seed: int = 0) -> TensorData:
        """A labelled transfer set: drop `exclude_classes` (indices or names), then keep n examples.

        The n examples are balanced across the remaining classes as far as their sizes allow,
        chosen by a seeded permutation, so "100 examples" means about 10 per digit rather than
        whatever a random draw gives. Labels and `classes` are unchanged, so a model trained on
        the subset still has an output for an excluded class (Hinton et al.'s "no 3s" experiment).
        """
        return self._select(self._balanced_indices(n, exclude_classes, seed))

    def split(self, n: int, *, seed: int = 0) -> tuple[TensorData, TensorData]:
        """(rest, held_out): n examples balanced over the classes held out, e.g. a validation set
        carved from the training data, so that budgets and settings are never chosen on the test set."""
        held_out = self._balanced_indices(n, (), seed)
        rest = torch.ones(len(self), dtype=torch.bool)
        rest[held_out] = False
        return self._select(torch.nonzero(rest).flatten()), self._select(held_out)

    def _balanced_indices(self, n: int | None, exclude_classes: Iterable[int | str], seed: int) -> torch.Tensor:
        if n is not None and not _is_whole(n):
            raise TypeError(f"n must be a whole number or None, got {n!r}")
        excluded = {self._class_index(c) for c in exclude_classes}
        labels = self.labels.cpu()
        keep = torch.nonzero(~torch.isin(labels, torch.tensor(sorted(excluded), dtype=labels.dtype))).flatten()
        if n is None:
            return keep
        if not 1 <= n <= len(keep):
            raise ValueError(f"n must be between 1 and {len(keep)} (examples left after exclusion), got {n}")
        generator = torch.Generator().manual_seed(seed)
        shuffled = keep[torch.randperm(len(keep), generator=generator)]
        shuffled_labels = labels[shuffled]
        # Rank of each example within its class in the shuffled order; taking the n smallest
        # (rank, seeded class priority) keys deals examples round-robin over the classes.
        rank = torch.empty_like(shuffled)
        for label in shuffled_labels.unique():
            in_class = shuffled_labels == label
            rank[in_class] = torch.arange(int(in_class.sum()))
        class_priority = torch.randperm(self.num_classes, generator=generator)
        order = torch.argsort(rank * self.num_classes + class_priority[shuffled_labels])
        return shuffled[order[:n]].sort().values

    def _select(self, indices: torch.Tensor) -> TensorData:
        return dataclasses.replace(self, inputs=self.inputs[indices.to(self.inputs.device)],
                                   labels=self.labels[indices.to(self.labels.device)])

    def _class_index(self, label: int | str) -> int:
        if isinstance(label, str):
            if label not in self.classes:
                raise ValueError(f"unknown class {label!r}; {self.name} has classes {self.classes}")
            return self.classes.index(label)
        if not _is_whole(label):
            raise ValueError(f"unknown class {label!r}; {self.name} has classes {self.classes}: give a name "
                             f"or an index from 0 to {self.num_classes - 1}")
        if not 0 <= label < self.num_classes:
            raise ValueError(f"unknown class index {label}; {self.name} has classes 0..{self.num_classes - 1}")
        return int(label)

    def batches(
        self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(inputs, labels) slices covering every example once; the last batch may be short.

        The permutation is drawn on the generator's device (the data's device without one) and
        indexes the tensors where they live, so a shuffled epoch never copies data to the host.
        """
        _check_batch_size(batch_size)
        return _slices((self.inputs, self.labels), batch_size, shuffle=shuffle, generator=generator)


def _slices(tensors, batch_size, *, shuffle, generator=None):
    """Aligned batches of several tensors (inputs, labels, cached teacher logits, ...)."""
    n = len(tensors[0])
    if not shuffle:
        for start in range(0, n, batch_size):
            yield tuple(tensor[start : start + batch_size] for tensor in tensors)
        return
    device = tensors[0].device if generator is None else generator.device
    order = torch.randperm(n, generator=generator, device=device).to(tensors[0].device)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        yield tuple(tensor[index] for tensor in tensors)


class _DeviceBatches:
    """Slices of data already on the device; one seeded generator, so each epoch reshuffles."""

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, shuffle: bool, seed: int):
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle
        self.generator = torch.Generator(device=tensors[0].device).manual_seed(seed)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        return _slices(self.tensors, self.batch_size, shuffle=self.shuffle, generator=self.generator)

    def __len__(self) -> int:
        return math.ceil(len(self.tensors[0]) / self.batch_size)


class _HostBatches:
    """Batches from host memory through a DataLoader, moved to the device as they arrive."""

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, shuffle: bool, device: torch.device,
                 seed: int):
        from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

        dataset = TensorDataset(*(tensor.cpu() for tensor in tensors))
        order = (
            RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
            if shuffle
            else SequentialSampler(dataset)
        )
        self.device = device
        self.pin_memory = device.type == "cuda"
        # A BatchSampler with batch_size=None makes each worker fetch a whole batch with one
        # index operation instead of collating batch_size single examples.
        self.loader = DataLoader(
            dataset,
            sampler=BatchSampler(order, batch_size, drop_last=False),
            batch_size=None,
            num_workers=2,
            pin_memory=self.pin_memory,
        )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        for batch in self.loader:
            yield tuple(tensor.to(self.device, non_blocking=self.pin_memory) for tensor in batch)

    def __len__(self) -> int:
        return len(self.loader)


def make_loader(
    data: TensorData, batch_size: int, *, shuffle: bool, device, seed: int = 0, max_device_bytes: int = 2**30,
    extras: tuple[torch.Tensor, ...] = (),
) -> _DeviceBatches | _HostBatches:
    """Iterable of (x, y, *extras) batches on `device`, reshuffled every epoch, with len().

    `extras` are tensors aligned with the examples (the trainer's cached teacher logits),
    sliced with the same order as inputs and labels.

    Data that fits (nbytes <= max_device_bytes) moves to `device` once and is sliced there;
    larger data goes through a torch DataLoader (2 workers, pinned memory for CUDA). Both paths
    draw their order from a generator seeded with `seed`, so runs repeat.
    """
    _check_batch_size(batch_size)
    device = torch.device(device)
    tensors = (data.inputs, data.labels, *extras)
    if data.nbytes <= max_device_bytes:
        return _DeviceBatches(tuple(tensor.to(device) for tensor in tensors), batch_size, shuffle, seed)
    return _HostBatches(tensors, batch_size, shuffle, device, seed)


def jitter(inputs: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by its own random shift of up to `max_shift` pixels across and down, edge
    pixels repeated: Hinton et al.'s "jittered inputs", which stop a teacher memorising where
    the ink is. (n, C, H, W) in, the same shape out."""
    if max_shift < 1:
        return inputs
    count, _, height, width = inputs.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (2, count, 1), generator=generator,
                           device=generator.device).to(inputs.device)
    padded = torch.nn.functional.pad(inputs, (max_shift,) * 4, mode="replicate")
    rows = torch.arange(height, device=inputs.device) + max_shift + shifts[0]  # (n, H)
    columns = torch.arange(width, device=inputs.device) + max_shift + shifts[1]  # (n, W)
    examples = torch.arange(count, device=inputs.device)[:, None, None]
    return padded[examples, :, rows[:, :, None], columns[:, None, :]].permute(0, 3, 1, 2)


def canonical_name(name: str) -> str:
    """The one place dataset names are normalised: 'Fashion_MNIST' and 'CIFAR-10' are accepted."""
    if not isinstance(name, str):
        raise TypeError(f"the dataset name must be a string, one of {', '.join(DATASETS)}; got {name!r}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def _torchvision_class(name: str):
    from torchvision import datasets

    return {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10}[name]


def _dataset_folder(name: str, root) -> Path:
    """Where torchvision keeps the files: named in every error so the user knows where to copy them."""
    return Path(root) / _FOLDERS[name]


def _advice(name: str, root) -> str:
    return (
        f"On a machine with internet run `python -m kdlab download {name} --data-root {root}` "
        f"(or copy torchvision's files into {_dataset_folder(name, root)}), then run again."
    )


def _decompress_idx_files(raw_folder: Path) -> None:
    """Offline, torchvision only reads unpacked IDX files; unpack copied *-ubyte.gz files next to them."""
    for packed in raw_folder.glob("*-ubyte.gz"):
        unpacked = packed.with_suffix("")
        if not unpacked.exists():
            partial = unpacked.with_name(unpacked.name + ".part")
            try:
                with gzip.open(packed, "rb") as source, open(partial, "wb") as target:
                    shutil.copyfileobj(source, target)
                os.replace(partial, unpacked)
            except BaseException:  # a bad gzip (or Ctrl-C) must not leave a .part file behind
                partial.unlink(missing_ok=True)
                raise


def _torchvision_split(name: str, root, *, train: bool, offline: bool):
    """A torchvision dataset object, or DatasetUnavailable that says what to do instead of a deep traceback."""
    folder = _dataset_folder(name, root)
    try:
        if offline and name != "cifar10" and folder.is_dir():
            _decompress_idx_files(folder)
        return _torchvision_class(name)(str(root), train=train, download=not offline)
    except _LOAD_ERRORS as error:
        if offline:
            raise DatasetUnavailable(
                f"{_TITLES[name]} is not in {folder} (or its files are incomplete or corrupted). {_advice(name, root)}"
            ) from None
        cause = " ".join(str(error).split())  # MNIST lists every mirror it tried: keep it on one line
        raise DatasetUnavailable(
            f"could not download {_TITLES[name]} into {folder} ({type(error).__name__}: {cause}). "
            f"{_advice(name, root)} "
            "Pass --offline (offline=True) to skip download attempts, or use the embedded `digits` dataset."
        ) from None


def download(name: str, root="data") -> Path:
    """Download a torchvision dataset into `root` (for `python -m kdlab download`); returns its folder.

    Raises DatasetUnavailable on failure, ValueError for `digits`, which ships with scikit-learn.
    """
    name = canonical_name(name)
    if name == "digits":
        raise ValueError("digits ships inside scikit-learn; there is nothing to download")
    for train in (True, False):
        _torchvision_split(name, root, train=train, offline=False)
    return _dataset_folder(name, root)


# The digits' train/test split of seed 0, the one every notebook and command uses, is stored in the package
# (scripts/digits_split.py writes it with scikit-learn's stratified train_test_split), so that loading the digits
# reads two small files instead of importing scikit-learn: about a second in every process that uses them.
STORED_DIGITS_SPLIT = Path(__file__).with_name("digits_split.json")
DIGITS_TEST_SIZE = 500


def digits_file() -> Path:
    """scikit-learn's own copy of the digits (digits.csv.gz), found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable("the digits ship inside scikit-learn, which is not installed: "
                                 "pip install -r requirements.txt")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"


def stratified_digits_split(seed: int, labels) -> tuple[list[int], list[int]]:
    """(train, test) indices into the digits, in the order scikit-learn's stratified train_test_split gives."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(list(range(len(labels))), test_size=DIGITS_TEST_SIZE, random_state=seed,
                                   stratify=labels)
    return train, test


def digits_table() -> tuple[np.ndarray, np.ndarray]:
    """(pixels scaled to [0, 1], labels) of all 1,797 digits, read as sklearn.datasets.load_digits reads them."""
    with gzip.open(digits_file(), "rt", encoding="utf-8") as file:
        table = np.loadtxt(file, delimiter=",")
    return table[:, :-1] / 16.0, table[:, -1].astype(int)


def _load_digits(seed: int) -> tuple[TensorData, TensorData]:
    pixels, targets = digits_table()
    if seed == 0:
        stored = json.loads(STORED_DIGITS_SPLIT.read_text())
        train_indices, test_indices = stored["train"], stored["test"]
    else:
        train_indices, test_indices = stratified_digits_split(seed, targets)
    x_train, x_test = pixels[train_indices], pixels[test_indices]
    y_train, y_test = targets[train_indices], targets[test_indices]
    mean, std = x_train.mean(), x_train.std()
    classes = tuple(str(c) for c in range(10))

    def tensor_data(x, y) -> TensorData:
        inputs = torch.tensor((x - mean) / std, dtype=torch.float32).reshape(-1, 1, 8, 8)
        return TensorData(inputs, torch.tensor(y, dtype=torch.int64), classes, "digits")

    return tensor_data(x_train, y_train), tensor_data(x_test, y_test)


def _load_torchvision(name: str, root, offline: bool) -> tuple[TensorData, TensorData]:
    splits = [_torchvision_split(name, root, train=train, offline=offline) for train in (True, False)]
    images = []
    for split in splits:
        # MNIST-style .data is a uint8 tensor (n, H, W); CIFAR's is a numpy array (n, H, W, C).
        pixels = torch.as_tensor(split.data)
        pixels = pixels.unsqueeze(1) if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2).contiguous()
        images.append(pixels.float().div_(255))
    # Per-channel statistics of the training images, applied to both splits.
    mean = images[0].mean(dim=(0, 2, 3), keepdim=True)
    std = images[0].std(dim=(0, 2, 3), keepdim=True)
    return tuple(
        TensorData(
            inputs=pixels.sub_(mean).div_(std),
            labels=torch.as_tensor(split.targets, dtype=torch.int64),
            classes=tuple(split.classes),
            name=name,
        )
        for split, pixels in zip(splits, images)
    )


def load_dataset(
    name: str = "digits", root="data", *, offline: bool = False, seed: int = 0
) -> tuple[TensorData, TensorData]:
    """(train, test) as normalised tensors on the CPU.

    `seed` picks the digits train/test split (the others have fixed published splits).
    `offline=True` never touches the network: a missing dataset fails at once with advice.
    """
    name = canonical_name(name)
    if name == "digits":
        return _load_digits(seed)
    return _load_torchvision(name, root, offline)
