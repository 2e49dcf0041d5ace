"""The networks of the thesis's Table 1.3: a scattering front end, then conv1-conv4 of
widths C, C, 2C, 2C (3x3, batch norm, ReLU), average pooling over the whole map and one
fully connected layer. For 64x64 inputs (Tiny ImageNet; the front end's output is 16x16) a
max pool follows conv4 and conv5, and conv5 and conv6 (widths 4C, 4C) come before the
average pooling.

Front ends, J = 2 scales, 49 channels per input channel (147 for RGB):
* ``dtcwt``: wavegen's ScatLayerj2 (any biort/qshift/mode/magbias); ``qshift=None`` is the
  stacked-ScatLayer alternative (every scale filtered with the biorthogonal set).
* ``morlet``: Kymatio's Scattering2D(J=2, L): 1 + 2L + L^2 channels per input channel
  (L=6: 49, L=8: 81).
The input is normalised per channel, and in training augmented by random shifts and
horizontal flips inside the forward pass, on the device.
"""
from __future__ import annotations

import torch
from torch import nn

from ..nn import ScatLayerj2
from .data import require

FRONTS = ("dtcwt", "morlet")


class Augment(nn.Module):
    """Random shifts (up to ``shift`` pixels each way, the border zero-padded: a padded
    random crop) and horizontal flips, per image. ``draw`` makes a batch's random numbers
    from a generator the caller passes (so that a run resumes bit for bit, and ranks of a
    distributed run each take their rows of one batch's draws); ``forward`` applies them."""

    def __init__(self, shift: int = 4, flip: bool = True):
        super().__init__()
        self.shift, self.flip = shift, flip

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, 3) int64: row shift, column shift (0 .. 2 shift), flip (0 or 1)."""
        shifts = torch.randint(0, 2 * self.shift + 1, (n, 2), generator=generator)
        flips = torch.randint(0, 2 if self.flip else 1, (n, 1), generator=generator)
        return torch.cat([shifts, flips], 1)

    def forward(self, x: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        s = self.shift
        draws = draws.to(x.device)
        padded = nn.functional.pad(x, (s, s, s, s))
        rows = torch.arange(h, device=x.device).view(1, h) + draws[:, :1]
        cols = torch.arange(w, device=x.device).view(1, w) + draws[:, 1:2]
        cols = torch.where(draws[:, 2:].bool(), cols.flip(1), cols)
        index = torch.arange(n, device=x.device).view(n, 1, 1)
        return padded.permute(0, 2, 3, 1)[index, rows.view(n, h, 1), cols.view(n, 1, w)] \
            .permute(0, 3, 1, 2)


class MorletFront(nn.Module):
    """Kymatio's Scattering2D(J=2, L) as (N, C, H, W) -> (N, C (1 + 2L + L^2), H/4, W/4)."""

    def __init__(self, shape: tuple[int, int], L: int):
        super().__init__()
        frontend = require("kymatio.scattering2d.frontend.torch_frontend", "kymatio",
                           "--front morlet")
        self.scattering = frontend.ScatteringTorch2D(J=2, shape=shape, L=L)

    def forward(self, x):
        y = self.scattering(x.contiguous())       # Kymatio takes contiguous tensors only
        return y.reshape(y.shape[0], -1, *y.shape[-2:])


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class HybridNet(nn.Module):
    """A scattering front end before the CNN of Table 1.3 (module docstring)."""

    def __init__(self, shape: tuple[int, int, int], classes: int, front: str = "dtcwt",
                 width: int = 192, biort: str = "near_sym_a", qshift: str | None = "qshift_a",
                 mode: str = "symmetric", magbias: float = 1e-2, L: int = 6,
                 mean=None, std=None, shift: int = 4, flip: bool = True):
        super().__init__()
        if front not in FRONTS:
            raise ValueError(f"unknown front end {front!r}; accepted front ends are "
                             f"{', '.join(FRONTS)}")
        channels, h, w = shape
        if h % 4 or w % 4:
            raise ValueError(f"images of {h}x{w}: the J=2 front ends take sides that are "
                             "multiples of 4")
        self.register_buffer("mean", torch.as_tensor(mean if mean is not None else
                                                     [0.5] * channels).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std if std is not None else
                                                    [0.25] * channels).view(1, -1, 1, 1))
        self.augment = Augment(shift, flip)
        if front == "dtcwt":
            self.front = ScatLayerj2(biort=biort, qshift=qshift, mode=mode, magbias=magbias)
            per_channel = 49
        else:
            self.front = MorletFront((h, w), L)
            per_channel = 1 + 2 * L + L * L
        c = width
        layers = [_conv(channels * per_channel, c), _conv(c, c), _conv(c, 2 * c),
                  _conv(2 * c, 2 * c)]
        if h >= 64:      # Tiny ImageNet: 16x16 after the front end
            layers += [nn.MaxPool2d(2), _conv(2 * c, 4 * c), nn.MaxPool2d(2),
                       _conv(4 * c, 4 * c)]
            c *= 2
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(2 * c, classes)

    def forward(self, images: torch.Tensor, draws: torch.Tensor | None = None):
        """``images``: uint8 (N, C, H, W); ``draws``: the augmentation's (``augment.draw``;
        None: none, as in evaluation)."""
        x = (images.float() / 255 - self.mean) / self.std
        if draws is not None:
            x = self.augment(x, draws)
        return self.fc(self.body(self.front(x)))
