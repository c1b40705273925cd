"""Training-set scores accumulated batch by batch equal the split scores of the same
predictions (vocflow.evaluation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vocflow.epoch_scores import TrainingScores
from vocflow.evaluation import classification_scores, segmentation_scores


def test_segmentation_training_scores_equal_the_split_scores() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 4, 5, 7)
    target = torch.randint(0, 4, (6, 5, 7))
    target[0, :2] = 255  # void
    target[1] = 0  # an image of background only
    tally = TrainingScores("segmentation", 4)
    for lo in (0, 2, 5):  # uneven batches
        hi = {0: 2, 2: 5, 5: 6}[lo]
        tally.add(logits[lo:hi], target[lo:hi])
    expected = segmentation_scores(logits.argmax(1).numpy(), target.numpy(), 4)
    assert tally.scores() == pytest.approx(expected)
    resumed = TrainingScores("segmentation", 4)
    resumed.restore(tally.state(), torch.device("cpu"))
    assert resumed.scores() == pytest.approx(expected)


def test_classification_training_scores_equal_the_split_scores() -> None:
    rng = np.random.default_rng(1)
    logits = torch.from_numpy(rng.normal(size=(10, 3)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 2, (10, 3)).astype(np.float32))
    tally = TrainingScores("classification", 3)
    tally.add(logits[:4], labels[:4])
    tally.add(logits[4:], labels[4:])
    expected = classification_scores(logits.sigmoid().numpy(), labels.numpy())
    assert tally.scores() == pytest.approx(expected, nan_ok=True)
    assert TrainingScores("classification", 3).scores() == {}
