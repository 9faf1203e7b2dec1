"""TorchScript MLP (64 -> 128 -> 16) that the benchmark saved as model.pt; input is a 1x64 JSON array.

One intra-op thread per worker: the workers already use the machine's cores, more threads only contend.
"""

import os

import torch


def model_fn(model_dir):
    torch.set_num_threads(1)
    model = torch.jit.load(os.path.join(model_dir, "model.pt"))
    model.eval()
    return model


def predict_fn(data, model):
    with torch.inference_mode():
        return model(torch.from_numpy(data).float()).numpy()
