"""A small CNN that has learned something: the 8x8 handwritten digits that ship inside
scikit-learn's wheel (no download), trained seeded in seconds on the CPU. Attribution maps
of a trained model can be judged; those of random weights are noise.

    model, accuracy = train()            # DigitsCNN in eval mode, held-out accuracy
    randomized(model)                    # the same with its top layers re-initialised
    images, labels = held_out()          # [N, 1, 8, 8] float32 in [0, 1], int64

Used by export-models.py (models/digits-cnn*.pt, digits-samples.json) and by the tests'
Python reference.
"""

from typing import Tuple

import torch
import torch.nn as nn
from torch import Tensor

SEED = 0
HELD_OUT = 0.2  # fraction of the data set kept out of training, by a seeded permutation
EPOCHS = 40
BATCH = 64
LR = 2e-3
# The layers the randomization sanity check re-initialises (Adebayo et al. 2018, cascading
# from the top): the classifier head.
TOP_LAYERS = ("fc2", "fc1")


class DigitsCNN(nn.Module):
    """[N, 1, 8, 8] pixels in [0, 1] -> [N, 10] logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x)))))
        return self.fc2(self.relu3(self.fc1(torch.flatten(x, 1))))


def _data() -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SEED))
    cut = int(len(labels) * (1 - HELD_OUT))
    train, test = order[:cut], order[cut:]
    return images[train], labels[train], images[test], labels[test]


def held_out() -> Tuple[Tensor, Tensor]:
    """The images and labels no training step saw."""
    _, _, images, labels = _data()
    return images, labels


def train() -> Tuple[DigitsCNN, float]:
    """The trained model (eval mode) and its accuracy on the held-out images."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same weights on any core count
    try:
        torch.manual_seed(SEED)
        model = DigitsCNN()
        images, labels, test_images, test_labels = _data()
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        generator = torch.Generator().manual_seed(SEED)
        for _ in range(EPOCHS):
            order = torch.randperm(len(labels), generator=generator)
            for start in range(0, len(labels), BATCH):
                batch = order[start : start + BATCH]
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(images[batch]), labels[batch])
                loss.backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(test_images).argmax(1) == test_labels).float().mean().item()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        return model, accuracy
    finally:
        torch.set_num_threads(threads)


def randomized(model: DigitsCNN) -> DigitsCNN:
    """A copy with TOP_LAYERS re-initialised (seeded), the rest as trained."""
    copy = DigitsCNN()
    copy.load_state_dict(model.state_dict())
    torch.manual_seed(SEED + 1)
    for name in TOP_LAYERS:
        getattr(copy, name).reset_parameters()
    for parameter in copy.parameters():
        parameter.requires_grad_(False)
    return copy.eval()
