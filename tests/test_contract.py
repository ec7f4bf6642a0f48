"""The core's contracts: the batch protocol (a Masked batch trains with the same loop, IWAE and
evaluation as a tensor), typed records that round-trip to JSON, a training state that resumes
from an old checkpoint, and library calls that leave the caller's torch settings alone."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from chordvae.batch import Masked
from chordvae.checkpoint import StoppingState, load_checkpoint
from chordvae.config import TrainConfig
from chordvae.curve import CurveConfig, learning_curve
from chordvae.datasets.base import Pieces
from chordvae.evaluate import evaluate, format_report
from chordvae.plane import LatentPlane
from chordvae.meta import DatasetMeta
from chordvae.train import TrainState, evaluate_losses, fit, resolve_device, torch_settings
from chordvae.vae import VAE, ModelConfig, iwae_nll

DATA = Path(__file__).parent / "data"


class MaskedEncoder(nn.Module):
    """Mean of the real frames -> (B, 2 * latent)."""

    def __init__(self, d: int, latent: int):
        super().__init__()
        self.linear = nn.Linear(d, 2 * latent)

    def forward(self, batch: Masked) -> torch.Tensor:
        m = batch.mask.unsqueeze(-1).float()
        return self.linear((batch.x * m).sum(1) / m.sum(1).clamp(min=1))


class MaskedBernoulli(nn.Module):
    """Every frame independent Bernoulli given z; padding frames do not count."""

    def __init__(self, d: int, latent: int):
        super().__init__()
        self.linear = nn.Linear(latent, d)

    def log_prob(self, batch: Masked, z: torch.Tensor) -> torch.Tensor:
        logits = self.linear(z).unsqueeze(-2)                       # (..., B, 1, D)
        x = batch.x.expand(*z.shape[:-2], *batch.x.shape)           # (..., B, T, D)
        frame = -nn.functional.binary_cross_entropy_with_logits(logits.expand_as(x), x, reduction="none").sum(-1)
        return (frame * batch.mask).sum(-1)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(z))

    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(self.mean(z), generator=generator)


def _sequences(n: int = 120, t: int = 6, d: int = 5) -> Masked:
    g = torch.Generator().manual_seed(0)
    kind = torch.randint(0, 2, (n,), generator=g)
    x = torch.stack([torch.tensor([1.0, 1, 0, 0, 0]), torch.tensor([0.0, 0, 1, 1, 1])])[kind]
    x = x.unsqueeze(1).expand(n, t, d).clone()
    lengths = torch.randint(1, t + 1, (n,), generator=g)
    mask = torch.arange(t) < lengths.unsqueeze(1)
    return Masked(x * mask.unsqueeze(-1), mask)


def test_masked_batches_index_like_tensors():
    batch = _sequences()
    assert len(batch) == 120 and len(batch[10:20]) == 10
    picked = batch[torch.tensor([3, 1])]
    torch.testing.assert_close(picked.x, batch.x[[3, 1]])
    assert picked.mask.tolist() == batch.mask[[3, 1]].tolist()
    assert batch.to("cpu").frames == int(batch.mask.sum())
    with pytest.raises(ValueError, match="does not fit"):
        Masked(torch.zeros(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))


def test_the_training_loop_iwae_and_evaluation_serve_a_masked_sequence_model():
    data = _sequences()
    torch.manual_seed(0)
    model = VAE(ModelConfig("toy-seq", (6, 5), latent_dim=2), MaskedEncoder(5, 2), MaskedBernoulli(5, 2))
    before = evaluate_losses(model, data)["loss"]
    state = fit(model, data[:100], data[100:], TrainConfig(epochs=15, batch_size=20, learning_rate=3e-2,
                                                         objective="iwae", mc_samples=3),
                progress=False, log=lambda s: None)
    after = evaluate_losses(model, data)["loss"]
    assert len(state.history) == 15 and after < 0.5 * before
    nll = iwae_nll(model, data[100:], 50, generator=torch.Generator().manual_seed(0))
    assert nll.shape == (20,) and nll.mean() <= evaluate_losses(model, data[100:], samples=200)["loss"] + 0.01
    # padding does not count: a padded frame changed to anything leaves the likelihood as it was
    one = data[:1]
    changed = Masked(torch.where(one.mask.unsqueeze(-1), one.x, torch.ones_like(one.x)), one.mask)
    z = torch.randn(4, 1, 2)
    torch.testing.assert_close(model.decoder.log_prob(one, z), model.decoder.log_prob(changed, z))
    assert LatentPlane.of(model, data).basis.shape == (2, 2)
    frames = {"dims": 5, "baselines": {"no latent": 9.9}}   # the sequence family brings its own baselines
    report = evaluate(model, data[:100], data[100:], k=10, baselines=lambda train, held, weights, groups: frames)
    assert report["examples"] == 20 and report["latent"]["latent_dim"] == 2 and report["baselines"] == {"no latent": 9.9}
    assert "VAE (IWAE, K=10)" in format_report(report)


def test_records_round_trip_to_json():
    config = TrainConfig(epochs=3, beta=0.5, threads=2)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert TrainConfig.from_dict({"epochs": 4}) == TrainConfig(epochs=4)   # fields added later: defaults
    meta = DatasetMeta("chords", ["bach=data/midi/bach"], {"features": "pitch-class"}, 3, {"pieces": 40})
    stored = json.loads(json.dumps(meta.to_dict()))
    assert stored == {"sources": ["bach=data/midi/bach"], "options": {"features": "pitch-class"}, "seed": 3,
                      "pieces": 40}                                       # format 1's flat layout
    assert DatasetMeta.from_dict("chords", stored) == meta
    stopping = StoppingState(1.5, 4, 2, None)
    back = StoppingState.from_dict(json.loads(json.dumps(stopping.to_dict())))
    assert (back.best_loss, back.best_epoch, back.bad_epochs) == (1.5, 4, 2)


def test_a_format_1_checkpoint_resumes_where_it_stopped():
    ckpt = load_checkpoint(DATA / "format1" / "model.pt")
    assert ckpt.training == TrainConfig(epochs=5, batch_size=50, learning_rate=3e-2, seed=2, min_delta=0.2,
                                        patience=3, lr_patience=1)
    assert ckpt.dataset_meta == DatasetMeta("toy", ["a.mid"], {"k": 1}, 2)
    best = {k: v.clone() for k, v in ckpt.model.state_dict().items()}
    state = TrainState.start(ckpt.model, ckpt.training, resolve_device("cpu"), ckpt)
    assert (state.epoch, state.stopper.best_epoch, state.stopper.bad_epochs) == (5, 4, 1)
    assert state.weights_epoch == 4 and state.scheduler is not None
    for k, v in state.stopper.best_weights.items():   # the best weights wait in early stopping,
        torch.testing.assert_close(v, best[k])
    torch.testing.assert_close(ckpt.model.state_dict()["encoder.1.weight"],   # the model trains on from the last
                               ckpt.last_state_dict["encoder.1.weight"])


def test_library_calls_leave_the_callers_torch_settings_alone(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    rng = torch.random.get_rng_state()
    with torch_settings(threads=threads + 1, seed=7):
        assert torch.get_num_threads() == threads + 1
        torch.rand(3)
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), rng)

    monkeypatch.chdir(tmp_path)                         # the curve trains without writing anything
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    g = torch.Generator().manual_seed(0)
    events = (torch.rand(60, 12, generator=g) < 0.3).float()
    pieces = Pieces(events, torch.arange(60) // 6, 10)
    result = learning_curve(pieces, CurveConfig(pieces=(3,), repeats=1, steps=5, epochs=2, iw_samples=5),
                            ModelConfig("mlp", (12,), 2, (8,)), TrainConfig(threads=1), log=lambda s: None)
    assert math.isfinite(result["points"][0]["nll"])
    assert list(tmp_path.iterdir()) == []
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), rng)
