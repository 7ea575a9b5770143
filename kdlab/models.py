"""Teacher and student families.

A model is described by a small, JSON-friendly `spec` dict, so a checkpoint can say what it
holds and be rebuilt (and checked) without pickling code. `build_model(spec, seed)` gives the
same initial weights for the same seed: that is how a baseline student and a distilled student
start from identical weights.
"""

from __future__ import annotations

import inspect
import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CharGPT", "ConvNet", "MLP", "STUDENT_SIZES", "SmallCNN", "build_model", "cnn_spec", "convnet_spec",
           "count_parameters", "gpt_spec", "mlp_spec", "student_spec", "teacher_spec"]


_WHOLE = "a whole number of at least 1"
# The fields that hold one size per dimension or layer; every other field but dropout holds one size.
_SIZE_LISTS = {"mlp": ("input_shape", "hidden"), "cnn": ("input_shape", "channels"),
               "convnet": ("input_shape", "channels"), "gpt": ()}


def _is_whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _checked_sizes(name, sizes) -> list:
    if not isinstance(sizes, (list, tuple)):
        raise ValueError(f"{name} must be a list of whole numbers of at least 1, got {sizes!r}")
    for position, size in enumerate(sizes):
        if not _is_whole(size):
            raise ValueError(f"{name}[{position}] must be {_WHOLE}, got {size!r}")
    return list(sizes)


def _checked(spec: dict) -> dict:
    """The spec with its size lists as lists, or a ValueError naming the field no network can have:
    torch would fail deep inside a layer on -3 or '16', and build a network without units on 0."""
    family, checked = spec["family"], dict(spec)
    for name, value in spec.items():
        if name == "dropout":
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
                raise ValueError(f"dropout must be a number in [0, 1), got {value!r}")
        elif name in _SIZE_LISTS[family]:
            checked[name] = _checked_sizes(name, value)
        elif name != "family" and not _is_whole(value):
            raise ValueError(f"{name} must be {_WHOLE}, got {value!r}")
    if family == "gpt" and spec["width"] % spec["heads"]:
        raise ValueError(f"width ({spec['width']}) must be a multiple of heads ({spec['heads']})")
    return checked


def mlp_spec(input_shape, hidden=(1200, 1200), num_classes=10, dropout=0.0):
    """A fully connected ReLU net on flattened inputs (Hinton et al.'s MNIST nets)."""
    return _checked({"family": "mlp", "input_shape": input_shape, "hidden": hidden,
                     "num_classes": num_classes, "dropout": dropout})


def cnn_spec(input_shape, channels=(32, 64, 128), num_classes=10, dropout=0.0):
    """A small VGG-style CNN (conv-conv-pool per stage) for CIFAR-10-sized images."""
    return _checked({"family": "cnn", "input_shape": input_shape, "channels": channels,
                     "num_classes": num_classes, "dropout": dropout})


def convnet_spec(input_shape, channels=(32, 64), hidden=128, num_classes=10, dropout=0.3):
    """A LeNet-style CNN for digit-sized images: conv, pool and ReLU per stage, then a dropout-regularised
    fully connected head. It keeps where in the image each stroke is, which the global pooling of
    `cnn_spec` throws away, and is the teacher for 28x28 digits and clothes."""
    return _checked({"family": "convnet", "input_shape": input_shape, "channels": channels, "hidden": hidden,
                     "num_classes": num_classes, "dropout": dropout})


def gpt_spec(vocab_size, context=64, width=96, depth=3, heads=4, dropout=0.0):
    """A GPT-style character model: `depth` blocks of causal self-attention, `width` wide,
    reading up to `context` characters and predicting the next one from `vocab_size` symbols."""
    return _checked({"family": "gpt", "vocab_size": vocab_size, "context": context, "width": width,
                     "depth": depth, "heads": heads, "dropout": dropout})


def teacher_spec(input_shape, num_classes=10):
    """The large, regularised teacher for an input shape: Hinton et al.'s 2x1200 ReLU with dropout
    for the 8x8 digits, a LeNet-style CNN for 28x28 images (on real MNIST the MLP teacher is no
    better than its students: see benchmarks/compare_teachers.py), a wider CNN for colour images."""
    _checked_sizes("input_shape", input_shape)
    if _is_colour_image(input_shape):
        return cnn_spec(input_shape, channels=(64, 128, 256), num_classes=num_classes, dropout=0.3)
    if math.prod(input_shape[1:]) > 8 * 8:
        return convnet_spec(input_shape, num_classes=num_classes)
    return mlp_spec(input_shape, hidden=(1200, 1200), num_classes=num_classes, dropout=0.5)


# Students per input kind, from the paper's 2x800 down to a few units.
STUDENT_SIZES = {
    "mlp": {"large": (800, 800), "medium": (100, 100), "small": (30, 30), "tiny": (10,)},
    "cnn": {"large": (32, 64, 128), "medium": (16, 32, 64), "small": (8, 16, 32), "tiny": (4, 8, 16)},
}


def student_spec(input_shape, size="small", num_classes=10):
    """An unregularised student of the named size ('large', 'medium', 'small', 'tiny')."""
    _checked_sizes("input_shape", input_shape)
    family = "cnn" if _is_colour_image(input_shape) else "mlp"
    sizes = STUDENT_SIZES[family]
    if not (isinstance(size, str) and size in sizes):
        raise ValueError(f"unknown student size {size!r}; choose one of {sorted(sizes)}")
    if family == "cnn":
        return cnn_spec(input_shape, channels=sizes[size], num_classes=num_classes)
    return mlp_spec(input_shape, hidden=sizes[size], num_classes=num_classes)


def build_model(spec, seed=None):
    """The network a spec describes; with `seed` (0 <= seed < 2**64, what torch.manual_seed takes), its initial
    weights depend on the seed only."""
    builders = {"mlp": MLP, "cnn": SmallCNN, "convnet": ConvNet, "gpt": CharGPT}
    family = spec.get("family") if isinstance(spec, dict) else None
    if family not in builders:
        raise ValueError(f"unknown model family {family!r} in spec {spec!r}; expected one of {sorted(builders)}")
    keys = set(spec) - {"family"}
    parameters = inspect.signature(builders[family]).parameters
    required = {name for name, parameter in parameters.items() if parameter.default is parameter.empty}
    if not required <= keys <= set(parameters):
        raise ValueError(f"a {family} spec takes the keys {sorted(parameters)}, got {sorted(keys)}; "
                         "build specs with mlp_spec, cnn_spec or gpt_spec")
    arguments = {key: value for key, value in _checked(spec).items() if key != "family"}
    if seed is None:
        return builders[family](**arguments)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a whole number in [0, 2**64), got {seed!r}")
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be a whole number in [0, 2**64), got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builders[family](**arguments)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters: the 'size' side of the distillation payoff."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


class NamedFeatures:
    """`features(x)`: the named intermediate tensors of a Sequential net, for feature distillation and
    similarity measures. It runs the layers in order and keeps the outputs named in `feature_names`
    (layer index -> name), so no hook is registered and none can be left behind; the last entry is
    "logits", equal to `model(x)`. Tensors keep their graph: a loss on them trains the layers below."""

    feature_names: dict[int, str]

    def features(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        named = {}
        hidden = inputs
        for index, layer in enumerate(self):
            hidden = layer(hidden)
            if index in self.feature_names:
                named[self.feature_names[index]] = hidden
        return named


def _name_outputs(layers, stage_ends, stage_prefix, extra=None):
    """{index: name}: "stage1", ... after each stage's last layer, `extra` names, "logits" last."""
    names = {index: f"{stage_prefix}{number}" for number, index in enumerate(stage_ends, start=1)}
    names.update(extra or {})
    names[len(layers) - 1] = "logits"
    return names


class MLP(NamedFeatures, nn.Sequential):
    """features: "hidden1", "hidden2", ... (after each ReLU) and "logits"."""

    def __init__(self, input_shape, hidden, num_classes, dropout=0.0):
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = units
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
        ends = [index for index, layer in enumerate(layers) if isinstance(layer, nn.ReLU)]
        self.feature_names = _name_outputs(layers, ends, "hidden")


class SmallCNN(NamedFeatures, nn.Sequential):
    """features: "stage1", "stage2", ... (each stage's pooled map, (N, C, H, W)), "pooled" (the global
    average, (N, C): what the classifier reads) and "logits"."""

    def __init__(self, input_shape, channels, num_classes, dropout=0.0):
        layers: list[nn.Module] = []
        in_channels = input_shape[0]
        for out_channels in channels:
            layers += [
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels), nn.ReLU(),
                nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels), nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            in_channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(in_channels, num_classes))
        super().__init__(*layers)
        ends = [index for index, layer in enumerate(layers) if isinstance(layer, nn.MaxPool2d)]
        flatten = next(index for index, layer in enumerate(layers) if isinstance(layer, nn.Flatten))
        self.feature_names = _name_outputs(layers, ends, "stage", {flatten: "pooled"})


class ConvNet(NamedFeatures, nn.Sequential):
    """features: "stage1", "stage2", ... (each stage's pooled, rectified map, (N, C, H, W)), "hidden" (the
    fully connected layer after its ReLU, (N, hidden)) and "logits".

    A stage pools before its ReLU: ReLU is monotonic, so max-pooling commutes with it, and the outputs and
    gradients (the same winner in each window) are exactly those of conv-ReLU-pool, for the ReLU on a
    quarter of the map (about a tenth of a training step on 28x28 images). The weights keep their indices."""

    def __init__(self, input_shape, channels, hidden, num_classes, dropout=0.3):
        layers: list[nn.Module] = []
        ends = []
        in_channels, (height, width) = input_shape[0], input_shape[1:]
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.MaxPool2d(2), nn.ReLU()]
            ends.append(len(layers) - 1)
            in_channels, height, width = out_channels, height // 2, width // 2
        layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_channels * height * width, hidden), nn.ReLU(),
                   nn.Dropout(dropout), nn.Linear(hidden, num_classes)]
        super().__init__(*layers)
        self.feature_names = _name_outputs(layers, ends, "stage", {len(layers) - 3: "hidden"})


class CharGPT(nn.Module):
    """Token and position embeddings, pre-norm transformer blocks, and a linear head:
    (batch, length) character ids -> (batch, length, vocab) next-character logits."""

    def __init__(self, vocab_size, context, width, depth, heads, dropout=0.0):
        super().__init__()
        self.context = context
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.position_embedding = nn.Embedding(context, width)
        self.blocks = nn.Sequential(*(TransformerBlock(width, heads, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size)

    def forward(self, ids, cache: list | None = None):
        """Logits for every position of `ids`. With `cache` (a list, empty on the first call) each layer's keys
        and values are kept in it, and a later call passes the one character drawn next: generating text then
        reads each character once instead of the whole text again for every new one."""
        start = cache[0][0].shape[2] if cache else 0  # characters the cache already holds
        length = ids.shape[1]
        if start + length > self.context:
            raise ValueError(f"at most {self.context} characters fit the context, got {start + length}; "
                             "pass the last ones only")
        if start and length != 1:
            raise ValueError(f"after the first call, pass one new character at a time, got {length}")
        positions = torch.arange(start, start + length, device=ids.device)
        hidden = self.token_embedding(ids) + self.position_embedding(positions)
        if cache is not None and not cache:
            cache.extend([None] * len(self.blocks))
        for layer, block in enumerate(self.blocks):
            hidden = block(hidden, cache, layer)
        return self.head(self.norm(hidden))


class TransformerBlock(nn.Module):
    def __init__(self, width, heads, dropout):
        super().__init__()
        self.attention_norm = nn.LayerNorm(width)
        self.attention = CausalSelfAttention(width, heads, dropout)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width),
                                 nn.Dropout(dropout))

    def forward(self, hidden, cache=None, layer=0):
        hidden = hidden + self.attention(self.attention_norm(hidden), cache, layer)
        return hidden + self.mlp(self.mlp_norm(hidden))


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position i sees positions 0..i only (is_causal)."""

    def __init__(self, width, heads, dropout):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.query_key_value = nn.Linear(width, 3 * width)
        self.output = nn.Linear(width, width)

    def forward(self, hidden, cache=None, layer=0):
        batch, length, width = hidden.shape
        query, key, value = (part.view(batch, length, self.heads, width // self.heads).transpose(1, 2)
                             for part in self.query_key_value(hidden).split(width, dim=-1))
        earlier = cache[layer] if cache is not None else None
        if earlier is not None:  # one new position, which sees every earlier one: no mask needed
            key, value = torch.cat([earlier[0], key], dim=2), torch.cat([earlier[1], value], dim=2)
        if cache is not None:
            cache[layer] = (key, value)
        attended = F.scaled_dot_product_attention(query, key, value, is_causal=earlier is None,
                                                  dropout_p=self.dropout if self.training else 0.0)
        return self.output(attended.transpose(1, 2).reshape(batch, length, width))


def _is_colour_image(input_shape) -> bool:
    return len(input_shape) == 3 and input_shape[0] == 3
