"""Layers under DistributedDataParallel: two CPU ranks (gloo) build the same transform into
one cache at once, train a step, and end with identical parameters; learnable filters
too (their gradients all-reduced like any parameter's)."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import wavegen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Model(torch.nn.Module):
    """Compiled-in filters around one convolution, learnable ones around another."""

    def __init__(self):
        super().__init__()
        self.dwt = wavegen.nn.DWTForward(J=2, wave="db2", mode="symmetric")
        self.idwt = wavegen.nn.DWTInverse(wave="db2", mode="symmetric")
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.learned = wavegen.nn.DWTForward(J=1, wave="db3", mode="periodization",
                                             learnable=True)
        self.learned_inverse = wavegen.nn.DWTInverse(wave="db3", mode="periodization",
                                                     filters=self.learned.filters)
        self.learned_conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        yl, yh = self.dwt(x)
        ll, lh = self.learned(x)
        return self.idwt((self.conv(yl), yh)) + \
            self.learned_inverse((self.learned_conv(ll), lh))


def train_step(rank, world, port, cache_dir, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      WAVEGEN_CACHE_DIR=cache_dir)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)                       # same initial weights on both ranks
    model = torch.nn.parallel.DistributedDataParallel(Model())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(1 + rank)                # different data per rank
    x = torch.randn(2, 3, 20, 20)
    loss = (model(x) - x).square().mean()
    loss.backward()
    results[f"grad{rank}"] = torch.cat([p.grad.flatten() for p in model.parameters()])
    opt.step()
    results[rank] = torch.cat([p.detach().flatten() for p in model.parameters()])
    dist.destroy_process_group()


def test_ddp_two_ranks_train_in_step(tmp_path):
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(train_step, args=(2, free_port(), str(tmp_path), results), nprocs=2, join=True)
    assert torch.equal(results["grad0"], results["grad1"])   # gradients were all-reduced
    assert torch.equal(results[0], results[1])
    torch.manual_seed(0)
    model = Model()
    assert len(list(model.learned.filters.parameters())) == 4
    initial = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert initial.shape == results[0].shape
    assert not torch.allclose(initial, results[0])       # and the step moved the weights
