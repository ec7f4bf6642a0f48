"""Regression guards for the core: fixed-seed trainings give the losses recorded at main ea1b928
(before the likelihood contract and the split of ``fit``), and a format-1 checkpoint written
by that code still loads with the same weights."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from chordvae.checkpoint import load_checkpoint
from chordvae.train import TrainConfig, evaluate_losses, fit
from chordvae.vae import ModelConfig, build_model, iwae_nll

DATA = Path(__file__).parent / "data"


def _toy() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    protos = torch.tensor([[1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0],
                           [0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1], [1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]]).float()
    labels = torch.randint(0, 4, (600,), generator=g)
    flips = torch.rand(600, 12, generator=g) < 0.05
    x = (protos[labels] + flips.float()) % 2
    return x[:500], x[500:]


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(300, 1, 8, 8, generator=g) < torch.linspace(0.1, 0.9, 64).view(1, 1, 8, 8)).float()
    return x[:256], x[256:]


# (data, model, training settings, recorded figures: train and validation loss per epoch, learning
# rate per epoch, the epoch early stopping ended on (0: none), final validation loss, IWAE K = 20)
SCENARIOS = {
    "mlp-elbo": (_toy, ModelConfig("mlp", (12,), 2, (32,)),
                 dict(epochs=4, batch_size=32, learning_rate=1e-2, seed=1, mc_samples=3, free_bits=0.1,
                      warmup_epochs=1, patience=2, lr_patience=1, validation_samples=2),
                 dict(train=[7.578023986816406, 6.2954972534179685, 5.297790710449219, 4.617316223144531],
                      validation=[6.702181396484375, 5.94641845703125, 4.981450805664062, 4.690011596679687],
                      lr=[0.01] * 4, stopped=0, final=4.613226013183594, iwae=4.460965214844508)),
    "mlp-iwae": (_toy, ModelConfig("mlp", (12,), 3, (16, 8)),
                 dict(epochs=3, batch_size=50, learning_rate=5e-3, seed=3, mc_samples=4, objective="iwae",
                      weight_decay=0.1),
                 dict(train=[8.170742736816406, 7.563999328613281, 7.141945434570313],
                      validation=[7.832027587890625, 7.3704901123046875, 7.070322875976562],
                      lr=[0.005] * 3, stopped=0, final=6.8570098876953125, iwae=6.75318460490219)),
    "mlp-stop": (_toy, ModelConfig("mlp", (12,), 2, (32,)),
                 dict(epochs=8, batch_size=32, learning_rate=2e-2, seed=5, min_delta=0.3, patience=3,
                      lr_patience=1, lr_factor=0.2),
                 dict(train=[7.160270660400391, 5.660685684204101, 4.957902435302734, 4.540252197265625,
                             4.582706756591797, 4.579396850585938, 4.429589096069336],
                      validation=[6.26094970703125, 5.347518310546875, 4.939104614257812, 4.596592407226563,
                                  4.735166320800781, 4.582781982421875, 4.4632415771484375],
                      lr=[0.02] * 6 + [0.004], stopped=7, final=4.774500732421875, iwae=4.444061697219979)),
    "conv": (_images, ModelConfig("conv", (1, 8, 8), 2),
             dict(epochs=2, batch_size=64, learning_rate=1e-3, seed=0, beta=0.5),
             dict(train=[44.25611400604248, 43.92826557159424], validation=[44.07451282848012, 43.54951615767045],
                  lr=[0.001] * 2, stopped=0, final=43.50870860706676, iwae=43.536539796206426)),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_training_reproduces_the_recorded_losses(name, tmp_path):
    data, model_config, settings, expected = SCENARIOS[name]
    x_train, x_val = data()
    config = TrainConfig(**settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(config.seed)
        model = build_model(model_config)
        history = fit(model, x_train, x_val, config, progress=False, log=lambda s: None).history
    finally:
        torch.set_num_threads(threads)
    model.eval()
    close = dict(rel=0, abs=1e-6)
    assert [h["train"]["loss"] for h in history] == pytest.approx(expected["train"], **close)
    assert [h["validation"]["loss"] for h in history] == pytest.approx(expected["validation"], **close)
    assert [h["learning_rate"] for h in history] == pytest.approx(expected["lr"])
    assert next((h["epoch"] for h in history if "stopped" in h), 0) == expected["stopped"]
    assert evaluate_losses(model, x_val)["loss"] == pytest.approx(expected["final"], **close)
    iwae = iwae_nll(model, x_val, 20, generator=torch.Generator().manual_seed(0)).mean().item()
    assert iwae == pytest.approx(expected["iwae"], **close)


def test_a_format_1_checkpoint_still_loads():
    """``tests/data/format1/model.pt`` was written by chordvae at main ea1b928 (an MLP trained 5
    epochs with early stopping); ``expected.json`` holds what that code read back from it."""
    expected = json.loads((DATA / "format1" / "expected.json").read_text())
    ckpt = load_checkpoint(DATA / "format1" / "model.pt")
    assert (ckpt.epoch, ckpt.weights_epoch) == (expected["epoch"], expected["weights_epoch"])
    mu, _ = ckpt.model.encode(torch.eye(12)[:3])
    torch.testing.assert_close(mu, torch.tensor(expected["mu"]))
    torch.testing.assert_close(ckpt.model.decode_mean(mu), torch.sigmoid(torch.tensor(expected["logits"])))
    assert ckpt.latent_plane is not None
    torch.testing.assert_close(ckpt.latent_plane.basis, torch.tensor(expected["plane"]["basis"]))
    assert ckpt.last_state_dict is not None and ckpt.stopping is not None
