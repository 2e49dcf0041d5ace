"""The experiments (wavegen.experiments) on tiny datasets written here in the published
on-disk formats: loading, a few training steps, resume after a kill, a two-cell grid, a
report with its figure, and the errors. Narrow networks and capped epochs keep it quick."""
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch

from wavegen.experiments import data
from wavegen.experiments.__main__ import main
from wavegen.experiments.models import Augment, HybridNet

QUICK = ["--width", "8", "--batch-size", "8", "--steps-per-epoch", "2"]


def _cifar_batch(n, rng, key):
    return pickle.dumps({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         key: rng.integers(0, 100 if key == b"fine_labels" else 10, n).tolist()})


def write_cifar10(root, rng, compressed: bool):
    """cifar-10-python.tar.gz (or its folder) with 5 training batches and a test batch."""
    members = {f"cifar-10-batches-py/data_batch_{i}": _cifar_batch(6, rng, b"labels")
               for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = _cifar_batch(10, rng, b"labels")
    if compressed:
        with tarfile.open(os.path.join(root, "cifar-10-python.tar.gz"), "w:gz") as tar:
            for name, payload in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    else:
        for name, payload in members.items():
            os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
            with open(os.path.join(root, name), "wb") as f:
                f.write(payload)
    return members


def write_tiny_imagenet(root, rng):
    """A tiny-imagenet-200 folder: 200 wnids, two classes with training JPEGs, validation
    JPEGs labelled in val_annotations.txt."""
    from PIL import Image
    base = os.path.join(root, "tiny-imagenet-200")
    wnids = [f"n{i:08d}" for i in range(200)]
    os.makedirs(os.path.join(base, "val", "images"))
    with open(os.path.join(base, "wnids.txt"), "w") as f:
        f.write("\n".join(wnids) + "\n")

    def jpeg(path):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, "JPEG")
    for wnid in wnids[:2]:
        os.makedirs(os.path.join(base, "train", wnid, "images"))
        for k in range(3):
            jpeg(os.path.join(base, "train", wnid, "images", f"{wnid}_{k}.JPEG"))
    lines = []
    for k in range(4):
        jpeg(os.path.join(base, "val", "images", f"val_{k}.JPEG"))
        lines.append(f"val_{k}.JPEG\t{wnids[k % 2]}\t0\t0\t63\t63")
    with open(os.path.join(base, "val", "val_annotations.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


@pytest.mark.parametrize("compressed", [True, False], ids=["archive", "folder"])
def test_cifar_reads_the_python_version(tmp_path, compressed):
    rng = np.random.default_rng(16)
    members = write_cifar10(tmp_path, rng, compressed)
    dataset = data.load("cifar10", str(tmp_path))
    first = pickle.loads(members["cifar-10-batches-py/data_batch_1"])
    assert dataset.train.images.shape == (30, 3, 32, 32) and dataset.test.images.shape[0] == 10
    # Row-major 3072 bytes: the red plane, then green, then blue.
    assert np.array_equal(dataset.train.images[:6].numpy(),
                          first[b"data"].reshape(6, 3, 32, 32))
    assert dataset.train.labels[:6].tolist() == first[b"labels"]


def test_tiny_imagenet_reads_the_folder_and_its_annotations(tmp_path):
    write_tiny_imagenet(tmp_path, np.random.default_rng(16))
    dataset = data.load("tiny-imagenet", str(tmp_path))
    assert dataset.train.images.shape == (6, 3, 64, 64) and dataset.classes == 200
    assert dataset.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert dataset.test.labels.tolist() == [0, 1, 0, 1]
    assert os.path.exists(tmp_path / "tiny-imagenet-200.uint8.pt")    # decoded once
    again = data.load("tiny-imagenet", str(tmp_path))
    assert torch.equal(again.test.images, dataset.test.images)


def test_digits_ships_with_scikit_learn():
    dataset = data.load("digits")
    assert dataset.shape == (1, 32, 32) and dataset.classes == 10
    assert len(dataset.train.labels) == 1347 and len(dataset.test.labels) == 450
    assert set(dataset.test.labels.tolist()) == set(range(10))


def test_missing_or_malformed_datasets_say_what_is_expected(tmp_path):
    with pytest.raises(data.DatasetError, match=r"cifar-10-python.tar.gz or the folder .*"
                                                r"cifar-10-batches-py.*toronto"):
        data.load("cifar10", str(tmp_path))
    with pytest.raises(data.DatasetError, match="tiny-imagenet-200.zip.*val_annotations"):
        data.load("tiny-imagenet", str(tmp_path))
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(data.DatasetError, match="data_batch_1 is not a CIFAR batch"):
        data.load("cifar10", str(tmp_path))
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        data.load("mnist")


def test_augmentation_shifts_and_flips_each_image():
    x = torch.randn(3, 2, 8, 8)
    draws = torch.tensor([[4, 4, 0], [4, 4, 1], [0, 8, 0]])   # none, flip, shift
    y = Augment(shift=4)(x, draws)
    assert torch.equal(y[0], x[0]) and torch.equal(y[1], x[1].flip(-1))
    # rows shifted down by 4 (zeros enter at the top), columns left by 4 (zeros at the right)
    assert torch.equal(y[2, :, 4:, :4], x[2, :, :4, 4:])
    assert (y[2, :, :4] == 0).all() and (y[2, :, :, 4:] == 0).all()


def test_networks_of_table_1_3():
    """Channel counts and output sizes: 49 channels per colour for the DTCWT and Morlet6,
    81 for Morlet8; Tiny ImageNet's extra stages."""
    for front, L, per_channel in (("dtcwt", 6, 49), ("morlet", 6, 49), ("morlet", 8, 81)):
        net = HybridNet((3, 32, 32), 10, front, width=4, L=L)
        assert net.body[0][0].in_channels == 3 * per_channel
        images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
        assert net(images).shape == (2, 10)
        # Augmented (a strided view) RGB images, as in training
        assert net(images, net.augment.draw(2, torch.Generator())).shape == (2, 10)
    tiny = HybridNet((3, 64, 64), 200, "dtcwt", width=4, qshift=None)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in tiny.body) == 2
    assert tiny(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)).shape == (2, 200)


def _strip(path):
    """metrics.jsonl without the timings."""
    with open(path) as f:
        return [{k: v for k, v in json.loads(line).items()
                 if k not in ("seconds", "images_per_second")} for line in f]


def test_train_writes_a_run_and_resumes_bit_for_bit_after_a_kill(tmp_path):
    rng = np.random.default_rng(16)
    write_cifar10(tmp_path, rng, compressed=True)
    args = ["train", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--epochs", "3",
            "--milestones", "2", *QUICK]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    run = tmp_path / "whole"
    assert sorted(os.listdir(run)) == ["best.pt", "checkpoint.pt", "config.json",
                                       "metrics.jsonl", "result.json"]
    rows = _strip(run / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["lr"] for r in rows] == [0.5, 0.5, pytest.approx(0.1)]
    assert json.load(open(run / "config.json"))["milestones"] == [2]
    # Killed (SIGKILL, no clean-up) in the middle of epoch 2, then resumed.
    killed = tmp_path / "killed"
    env = dict(os.environ, WAVEGEN_EXPERIMENTS_KILL_AT="2:1")
    proc = subprocess.run([sys.executable, "-m", "wavegen.experiments", *args, "--out",
                           str(killed)], env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert [r["epoch"] for r in _strip(killed / "metrics.jsonl")] == [1]
    assert main(args + ["--out", str(killed), "--resume"]) == 0
    assert _strip(killed / "metrics.jsonl") == rows
    a = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(killed / "checkpoint.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # A finished run is not trained again; another run in its directory is refused.
    assert main(args + ["--out", str(killed), "--resume"]) == 0
    assert main(args + ["--out", str(killed)]) == 2
    assert main(args + ["--width", "16", "--out", str(killed), "--resume"]) == 2


def test_grid_skips_finished_cells_and_report_writes_tables_and_figure(tmp_path, capsys):
    grid = ["grid", "--datasets", "digits", "--seeds", "1", "--out", str(tmp_path / "g"),
            "--wavelets", "a", "--paddings", "symmetric", "zero", "--biases", "0.01",
            "--morlets", "--epochs", "1", *QUICK]
    assert main(grid + ["--jobs", "2"]) == 0       # as two train processes at once
    cells = sorted(os.listdir(tmp_path / "g" / "digits"))
    assert cells == ["dtcwt-a-symmetric-bias0.01", "dtcwt-a-zero-bias0.01"]
    config = json.load(open(tmp_path / "g" / "digits" / cells[1] / "seed0" / "config.json"))
    assert config["mode"] == "zero" and config["biort"] == "near_sym_a"
    capsys.readouterr()
    assert main(grid) == 0
    assert "2 finished, 0 to run" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "g")]) == 0
    text = (tmp_path / "g" / "report.md").read_text()
    assert "| digits | DTCWT (a, symmetric, bias 1e-2) | 1 |" in text
    assert "| a | zero | - | - |" in text
    png = (tmp_path / "g" / "figure_1_2.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["report", str(tmp_path / "g")]) == 0      # again, beside its own files
    assert "Training: C=8, 1 epochs, batch 8" in (tmp_path / "g" / "report.md").read_text()


def test_bad_options_are_errors(tmp_path, capsys):
    assert main(["train", "--dataset", "cifar10", "--out", str(tmp_path / "r")]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "r"),
                 "--epochs", "0"]) == 2
    assert "epochs must be at least 1" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no finished runs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "digits", "--out", str(tmp_path), "--front", "gabor"])


@pytest.mark.slow
def test_train_under_torchrun_on_two_ranks(tmp_path):
    """DistributedDataParallel over two gloo ranks: each takes half of every batch, rank 0
    writes the run, and the metrics count the whole batches."""
    out = tmp_path / "ddp"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                           "2", "-m", "wavegen.experiments", "train", "--dataset", "digits",
                           "--epochs", "1", "--device", "cpu", "--out", str(out), *QUICK],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "metrics.jsonl") as f:
        (row,) = [json.loads(line) for line in f]
    assert round(row["images_per_second"] * row["seconds"]) == 16      # 2 steps of 8, summed
    assert json.load(open(out / "result.json"))["final"]["epoch"] == 1
