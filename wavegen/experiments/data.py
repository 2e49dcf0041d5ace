"""Datasets read from disk in their published formats (no downloads), as uint8 image
tensors (N, C, H, W) and int64 labels; the networks normalise and augment on the device.

* CIFAR-10 / CIFAR-100: the "python version" archives (``cifar-10-python.tar.gz``,
  ``cifar-100-python.tar.gz``, from https://www.cs.toronto.edu/~kriz/cifar.html), or the
  folders they extract to (``cifar-10-batches-py``, ``cifar-100-python``).
* Tiny ImageNet 200: ``tiny-imagenet-200.zip`` (http://cs231n.stanford.edu/) or its folder
  ``tiny-imagenet-200`` (``wnids.txt``, ``train/<wnid>/images/*.JPEG``, ``val/images`` with
  ``val/val_annotations.txt``); decoded once to a uint8 cache file next to it.
* digits: scikit-learn's handwritten digits (ships with the package), 8x8 resized to 32x32.
"""
from __future__ import annotations

import dataclasses
import importlib
import io
import os
import pickle
import tarfile
import zipfile

import numpy as np
import torch

DATASETS = ("cifar10", "cifar100", "tiny-imagenet", "digits")


class DatasetError(ValueError):
    """A dataset missing or malformed on disk."""


@dataclasses.dataclass
class Split:
    images: torch.Tensor      # (N, C, H, W) uint8
    labels: torch.Tensor      # (N,) int64


@dataclasses.dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    classes: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])


def require(module: str, package: str, what: str):
    """Import an optional dependency of the experiments, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{what} needs {package}: pip install 'wavegen[experiments]' (or "
                          f"pip install {package})") from None


def load(name: str, data_dir: str | None = None) -> Dataset:
    """The dataset ``name`` (one of DATASETS) from ``data_dir``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; accepted datasets are {', '.join(DATASETS)}")
    if name == "digits":
        return _digits()
    if data_dir is None:
        raise DatasetError(f"--dataset {name} reads its files from --data-dir; none given")
    data_dir = os.path.expanduser(data_dir)
    return _cifar(name, data_dir) if name.startswith("cifar") else _tiny_imagenet(data_dir)


# -- CIFAR ----------------------------------------------------------------------------------
_CIFAR = {"cifar10": ("cifar-10-python.tar.gz", "cifar-10-batches-py",
                      [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10),
          "cifar100": ("cifar-100-python.tar.gz", "cifar-100-python", ["train"], ["test"],
                       b"fine_labels", 100)}


def _cifar(name: str, data_dir: str) -> Dataset:
    archive, folder, train, test, key, classes = _CIFAR[name]
    where = (f"{os.path.join(data_dir, archive)} or the folder {os.path.join(data_dir, folder)} "
             f"it extracts to (the \"python version\" from "
             "https://www.cs.toronto.edu/~kriz/cifar.html)")
    if os.path.isdir(os.path.join(data_dir, folder)):
        def read(member):
            path = os.path.join(data_dir, folder, member)
            if not os.path.isfile(path):
                raise DatasetError(f"{name}: {path} is missing; expected {where}")
            with open(path, "rb") as f:
                return f.read()
    elif os.path.isfile(os.path.join(data_dir, archive)):
        tar = tarfile.open(os.path.join(data_dir, archive))

        def read(member):
            try:
                return tar.extractfile(f"{folder}/{member}").read()
            except KeyError:
                raise DatasetError(f"{name}: {archive} has no {folder}/{member}; expected "
                                   f"{where}") from None
    else:
        raise DatasetError(f"{name}: not found in {data_dir}; expected {where}")

    def split(members) -> Split:
        images, labels = [], []
        for member in members:
            try:
                batch = pickle.loads(read(member), encoding="bytes")
                data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                labels.append(np.asarray(batch[key], dtype=np.int64))
            except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as exc:
                raise DatasetError(f"{name}: {member} is not a CIFAR batch (a pickle of "
                                   f"b'data' (N, 3072) uint8 and {key!r}): {exc}") from None
            images.append(data)
        return Split(torch.from_numpy(np.concatenate(images)),
                     torch.from_numpy(np.concatenate(labels)))
    return Dataset(name, split(train), split(test), classes)


# -- Tiny ImageNet -------------------------------------------------------------------------
def _tiny_imagenet(data_dir: str) -> Dataset:
    folder, archive = os.path.join(data_dir, "tiny-imagenet-200"), \
        os.path.join(data_dir, "tiny-imagenet-200.zip")
    where = (f"{archive} or its folder {folder} (wnids.txt, train/<wnid>/images/*.JPEG, "
             "val/images/*.JPEG and val/val_annotations.txt; from http://cs231n.stanford.edu/)")
    cache = os.path.join(data_dir, "tiny-imagenet-200.uint8.pt")
    if os.path.isfile(cache):
        saved = torch.load(cache)
        return Dataset("tiny-imagenet", Split(*saved["train"]), Split(*saved["test"]), 200)
    if os.path.isdir(folder):
        def read(member):
            path = os.path.join(folder, member)
            if not os.path.isfile(path):
                raise DatasetError(f"tiny-imagenet: {path} is missing; expected {where}")
            with open(path, "rb") as f:
                return f.read()
        names = [os.path.relpath(os.path.join(d, f), folder).replace(os.sep, "/")
                 for d, _, fs in os.walk(folder) for f in fs]
    elif os.path.isfile(archive):
        zf = zipfile.ZipFile(archive)
        prefix = "tiny-imagenet-200/"

        def read(member):
            try:
                return zf.read(prefix + member)
            except KeyError:
                raise DatasetError(f"tiny-imagenet: {archive} has no {prefix}{member}; "
                                   f"expected {where}") from None
        names = [n[len(prefix):] for n in zf.namelist() if n.startswith(prefix)]
    else:
        raise DatasetError(f"tiny-imagenet: not found in {data_dir}; expected {where}")
    image = require("PIL.Image", "Pillow", "Tiny ImageNet's JPEGs")
    wnids = read("wnids.txt").decode().split()
    index = {w: i for i, w in enumerate(wnids)}
    if len(wnids) != 200:
        raise DatasetError(f"tiny-imagenet: wnids.txt lists {len(wnids)} classes, not 200")

    def decode(member) -> np.ndarray:
        with image.open(io.BytesIO(read(member))) as im:
            pixels = np.asarray(im.convert("RGB"), dtype=np.uint8)
        if pixels.shape != (64, 64, 3):
            raise DatasetError(f"tiny-imagenet: {member} is {pixels.shape}, not 64x64 RGB")
        return pixels.transpose(2, 0, 1)

    train = sorted(n for n in names if n.startswith("train/") and n.endswith(".JPEG"))
    train_labels = [index.get(n.split("/")[1]) for n in train]
    if not train or None in train_labels:
        raise DatasetError(f"tiny-imagenet: train/ has no images of the classes of wnids.txt; "
                           f"expected {where}")
    val = []
    for line in read("val/val_annotations.txt").decode().splitlines():
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise DatasetError(f"tiny-imagenet: val_annotations.txt line {line!r} does not "
                               "name an image and a class of wnids.txt")
        val.append((f"val/images/{fields[0]}", index[fields[1]]))

    def split(members, labels) -> Split:
        return Split(torch.from_numpy(np.stack([decode(m) for m in members])),
                     torch.tensor(labels, dtype=torch.int64))
    dataset = Dataset("tiny-imagenet", split(train, train_labels),
                      split([m for m, _ in val], [c for _, c in val]), 200)
    tmp = cache + f".{os.getpid()}.tmp"        # written whole, then renamed
    torch.save({"train": (dataset.train.images, dataset.train.labels),
                "test": (dataset.test.images, dataset.test.labels)}, tmp)
    os.replace(tmp, cache)
    return dataset


# -- digits --------------------------------------------------------------------------------
def _digits() -> Dataset:
    """scikit-learn's 1797 8x8 digits (16 grey levels) resized to 32x32 (bilinear), split
    by a fixed permutation into 1347 training and 450 test images (sklearn's usual 25%)."""
    datasets = require("sklearn.datasets", "scikit-learn", "--dataset digits")
    digits = datasets.load_digits()
    images = torch.from_numpy(digits.images).float().unsqueeze(1) * (255 / 16)
    images = torch.nn.functional.interpolate(images, size=(32, 32), mode="bilinear",
                                             align_corners=False)
    images = images.round().clamp(0, 255).to(torch.uint8)
    labels = torch.from_numpy(digits.target).long()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    test, train = order[:450], order[450:]
    return Dataset("digits", Split(images[train], labels[train]),
                   Split(images[test], labels[test]), 10)
