"""Training determinism, latent clipping, progress reporting and prediction conventions."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from quant_models.data import load_digits_split
from quant_models.layers import BinaryLinear
from quant_models.models import BinarizedMLP
from quant_models.train import TrainReport, evaluate, predict, train_classifier


class _Fixed(nn.Module):
    """Returns the same scores for every input row."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores = torch.tensor(scores)

    def forward(self, x: Tensor) -> Tensor:
        return self.scores.expand(x.shape[0], -1)


def test_predict_ties_go_to_first_index_and_mode_is_restored() -> None:
    model = _Fixed([1.0, 3.0, 3.0, -2.0])
    model.train()
    pred = predict(model, np.zeros((5, 64), dtype=np.int64))
    assert pred.dtype == np.int64
    assert pred.tolist() == [1] * 5
    assert model.training
    assert predict(_Fixed([0.0, 0.0]), np.zeros((2, 1))).tolist() == [0, 0]
    assert evaluate(model, np.zeros((4, 1)), np.array([1, 1, 2, 0])) == 0.5


def _short_run(seed: int, progress: list[tuple[int, int, float]] | None = None):
    split = load_digits_split()
    torch.manual_seed(seed)
    model = BinarizedMLP(hidden=(32, 32))
    callback = None if progress is None else (lambda e, n, loss: progress.append((e, n, loss)))
    report = train_classifier(
        model, split, epochs=3, lr=3e-3, batch_size=64, seed=seed, progress=callback
    )
    return model, report, split


def test_training_is_deterministic_and_clips_latent_weights() -> None:
    calls: list[tuple[int, int, float]] = []
    model_a, report_a, split = _short_run(0, calls)
    model_b, report_b, _ = _short_run(0)
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert report_a.final_loss == report_b.final_loss
    assert not model_a.training
    for m in model_a.modules():
        if isinstance(m, BinaryLinear):
            assert float(m.weight.detach().abs().max()) <= 1.0
    assert [(e, n) for e, n, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert calls[-1][2] == report_a.final_loss
    assert isinstance(report_a, TrainReport) and report_a.epochs == 3
    assert report_a.test_accuracy == evaluate(model_a, split.x_test, split.y_test)
    assert report_a.test_accuracy > 0.5  # far above chance (0.1) even after 3 epochs


def test_training_leaves_callers_rng_untouched() -> None:
    split = load_digits_split()
    model = BinarizedMLP(hidden=(16,))
    torch.manual_seed(123)
    state = torch.get_rng_state()
    train_classifier(model, split, epochs=1, lr=1e-3, batch_size=128, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
