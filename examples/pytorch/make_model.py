"""Build the example's model: a 4 -> 2 linear layer with fixed weights, saved as TorchScript.

    python make_model.py /tmp/ml-pytorch/model      # writes /tmp/ml-pytorch/model/model.pt

The weights are those of the bundled example model, so ``[[1, 2, 3, 4]]`` predicts
``[[1.5, 2.0]]``. Nothing is downloaded.
"""

from __future__ import annotations

import os
import sys
import warnings

import torch

WEIGHT = [[1.0, 2.0, 0.0, -1.0], [0.5, -1.0, 1.0, 0.25]]
BIAS = [0.5, -0.5]


class TinyLinear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def make_model(model_dir: str) -> str:
    """Write ``model.pt`` into ``model_dir`` (created if needed) and return its path."""
    model = TinyLinear()
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor(WEIGHT))
        model.linear.bias.copy_(torch.tensor(BIAS))
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, "model.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, still supported
        torch.jit.script(model).save(path)
    return path


if __name__ == "__main__":
    print(make_model(sys.argv[1] if len(sys.argv) > 1 else "model"))
