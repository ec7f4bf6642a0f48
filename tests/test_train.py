"""Training, run directories, resume and the NaN guard, on a small registered toy dataset."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from chordvae import runs
from chordvae.checkpoint import load_checkpoint
from chordvae.cli import main
from chordvae.errors import ChordVAEError, TrainingDiverged
from chordvae.train import TrainConfig, fit, fused_adam, run_directory
from chordvae.vae import ModelConfig, build_model
from torch.utils._python_dispatch import TorchDispatchMode

from tests.helpers import Toy


def _train(tmp_path, epochs=3, **kw):
    config = TrainConfig(epochs=epochs, batch_size=32, learning_rate=1e-2, seed=1, **kw)
    return runs.train("toy", config=config, out=tmp_path / "run", progress=False, log=lambda s: None)


def test_training_learns_and_writes_a_complete_run_directory(tmp_path):
    run = _train(tmp_path, epochs=4)
    names = {p.name for p in run.dir.iterdir()}
    assert {"config.json", "model.pt", "metrics.jsonl", "loss.png", "latent_space.png",
            "label_clusters.png"} <= names
    metrics = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    for m in metrics:
        assert m["seconds"] > 0
        for split in ("train", "validation"):
            assert set(m[split]) >= {"loss", "reconstruction_loss", "kl_loss"}
            assert m[split]["loss"] == pytest.approx(m[split]["reconstruction_loss"] + m[split]["kl_loss"], rel=1e-5)
    untrained = 12 * torch.log(torch.tensor(2.0)).item()  # ~8.3 nats: a coin per bit
    assert metrics[-1]["validation"]["loss"] < 0.6 * untrained
    config = json.loads((run.dir / "config.json").read_text())
    assert config["model"]["event_shape"] == [12] and config["training"]["epochs"] == 4


def test_same_seed_same_run(tmp_path):
    a = _train(tmp_path / "a", epochs=2)
    b = _train(tmp_path / "b", epochs=2)
    x = torch.rand(5, 12)
    torch.testing.assert_close(a.model.encode(x), b.model.encode(x))


def test_resume_continues_where_the_run_stopped(tmp_path):
    run = _train(tmp_path, epochs=2)
    resumed = runs.resume(run.dir, epochs=4, progress=False, log=lambda s: None)
    assert [m["epoch"] for m in resumed.metrics] == [1, 2, 3, 4]
    assert load_checkpoint(run.dir).epoch == 4
    with pytest.raises(ChordVAEError, match="already trained 4 epochs"):
        runs.resume(run.dir, epochs=4, progress=False, log=lambda s: None)


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    run = _train(tmp_path, epochs=1)
    before = (run.dir / "model.pt").read_bytes()
    bad = torch.full((64, 12), float("nan"))
    config = TrainConfig(epochs=2)
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        fit(run.model, bad, bad, config, run_directory(run.dir, config, run.dataset_meta),
            resume=load_checkpoint(run.dir), progress=False, log=lambda s: None)
    assert (run.dir / "model.pt").read_bytes() == before
    assert load_checkpoint(run.dir).epoch == 1


def test_kl_warmup_ramps_beta():
    config = TrainConfig(beta=2.0, warmup_epochs=4)
    assert [config.beta_at(e) for e in (1, 2, 4, 9)] == [0.5, 1.0, 2.0, 2.0]


def _fit(run_dir, epochs, watch=None, **kw) -> tuple[torch.nn.Module, list[dict]]:
    """Train the toy data as runs.train does (same seeding), without the pictures: (model, metrics).
    ``watch(model)`` is called before training."""
    config = TrainConfig(epochs=epochs, batch_size=32, learning_rate=1e-2, seed=1, **kw)
    torch.manual_seed(config.seed)
    data = Toy().load([], {}, config.seed)
    model = build_model(ModelConfig("mlp", (12,), latent_dim=2, hidden=(32,)))
    if watch is not None:
        watch(model)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = fit(model, data.train, data.validation, config,
                run_directory(run_dir, config, data.meta, log=lambda s: None),
                progress=False, log=lambda s: None)
    return model, state.history


def _weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_warmup_trains_each_epoch_with_its_own_beta(tmp_path):
    _, metrics = _fit(tmp_path / "warm", epochs=3, beta=1.5, warmup_epochs=3)
    assert [m["beta"] for m in metrics] == pytest.approx([0.5, 1.0, 1.5])
    # one epoch of a 3-epoch warm-up to beta 1.5 is one epoch at beta 0.5, weight for weight
    first = _weights(_fit(tmp_path / "first", epochs=1, beta=1.5, warmup_epochs=3)[0])
    torch.testing.assert_close(first, _weights(_fit(tmp_path / "half", epochs=1, beta=0.5)[0]))
    assert not torch.allclose(first, _weights(_fit(tmp_path / "full", epochs=1, beta=1.5)[0]))


def test_free_bits_inside_training_take_the_kl_gradient_away_below_the_floor(tmp_path):
    # a floor of 50 nats per dimension is above any KL here: the trained KL term is a constant,
    # so training follows the reconstruction alone, exactly as with beta = 0
    floored, metrics = _fit(tmp_path / "floored", epochs=2, free_bits=50.0)
    torch.testing.assert_close(_weights(floored), _weights(_fit(tmp_path / "beta0", epochs=2, beta=0.0)[0]))
    assert not torch.allclose(_weights(floored), _weights(_fit(tmp_path / "plain", epochs=2)[0]))
    for m in metrics:   # the reported KL is the true one, not the floor
        assert m["train"]["kl_loss"] < 50.0


def test_weight_decay_shrinks_the_weights_and_zero_is_plain_adam(tmp_path, monkeypatch):
    plain = _weights(_fit(tmp_path / "plain", epochs=2)[0])
    with monkeypatch.context() as m:
        adam = torch.optim.Adam
        m.setattr(torch.optim, "AdamW", lambda params, lr, weight_decay, fused: adam(params, lr=lr, fused=fused))
        torch.testing.assert_close(plain, _weights(_fit(tmp_path / "adam", epochs=2)[0]))
    decayed = _weights(_fit(tmp_path / "decayed", epochs=2, weight_decay=5.0)[0])
    assert decayed.norm() < 0.9 * plain.norm()


def test_mc_samples_decode_that_many_draws_per_example(tmp_path):
    rows = []

    def watch(model):
        model.decoder.register_forward_hook(lambda module, inputs, output: rows.append(len(inputs[0])))

    _fit(tmp_path, epochs=1, watch=watch, mc_samples=3)
    # 500 training events in batches of 32: 15 full batches and one of 20, each decoded 3 times over
    assert rows[:16] == [96] * 15 + [60]


def test_training_sees_each_batch_as_the_augmentation_changes_it():
    """Trained on C major triads moved to random keys, a model scores an E major triad like the
    C major one (within a nat or two: one key of twelve); trained on the triads as they are, it
    finds E major far less likely."""
    from functools import partial

    from chordvae.datasets.chords import random_keys
    from chordvae.evaluate import iwae_nll

    c_major, e_major = torch.zeros(1, 12), torch.zeros(1, 12)
    c_major[0, [0, 4, 7]] = 1
    e_major[0, [4, 8, 11]] = 1
    train = c_major.repeat(256, 1)
    nll = {}
    for augment in (None, partial(random_keys, blocks=1)):
        torch.manual_seed(0)
        model = build_model(ModelConfig("mlp", (12,), latent_dim=2, hidden=(32,)))
        fit(model, train, c_major, TrainConfig(epochs=12, batch_size=32, learning_rate=1e-2), progress=False,
            log=lambda line: None, augment=augment)
        model.eval()
        nll[augment is None] = [iwae_nll(model, x, 64, generator=torch.Generator().manual_seed(0)).item()
                                for x in (c_major, e_major)]
    plain, augmented = nll[True], nll[False]
    assert plain[1] - plain[0] > 10 and abs(augmented[1] - augmented[0]) < 2, (plain, augmented)


def test_an_existing_run_is_never_overwritten(tmp_path):
    _train(tmp_path, epochs=1)
    with pytest.raises(ChordVAEError, match="already holds a run"):
        _train(tmp_path, epochs=1)


def test_cli_trains_plots_and_resumes(tmp_path):
    out = tmp_path / "cli-run"
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--dataset", "toy", "--epochs", "2", "--batch-size", "64",
                                  "--hidden", "16", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"run directory: {out}" in result.output
    (out / "latent_space.png").unlink()
    result = runner.invoke(main, ["plot", str(out), "--overwrite"])
    assert result.exit_code == 0 and (out / "latent_space.png").stat().st_size > 0
    result = runner.invoke(main, ["train", "--resume", str(out), "--epochs", "3", "-q"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out).epoch == 3


@pytest.mark.parametrize("args, message", [
    (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["train", "--dataset", "toy", "--epochs", "0"], "--epochs"),
    (["train", "--dataset", "toy", "--hidden", "a,b"], "comma-separated"),
    (["train", "--dataset", "toy", "--weight-decay", "-1"], "--weight-decay"),
    (["train", "--dataset", "mnist", "--data-dir", "/no/such/dir", "--epochs", "1"], "/no/such/dir"),
    (["plot", "/no/such/run"], "does not exist"),
    (["train", "--resume", "/no/such/run"], "no checkpoint"),
    (["train"], "--dataset is required"),
    (["train", "-d", "mnist", "--segment", "beat"], "--segment do not apply to --dataset mnist"),
    (["train", "-d", "chords", "--data-dir", "x"], "--data-dir do not apply to --dataset chords"),
])
def test_cli_bad_input_is_one_line_and_non_zero(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


class _Float64Watch(TorchDispatchMode):
    """Records every op that makes a float64 tensor except a copy to the CPU or arithmetic on
    float64 inputs: what would fail on a device without float64 (Apple's MPS)."""

    def __init__(self):
        super().__init__()
        self.offenders = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        made_f64 = any(isinstance(t, torch.Tensor) and t.dtype == torch.float64
                       for t in (out if isinstance(out, (tuple, list)) else [out]))
        inputs = [a for a in args if isinstance(a, torch.Tensor)]
        to_cpu = func is torch.ops.aten._to_copy.default and kwargs.get("device") == torch.device("cpu")
        if made_f64 and not to_cpu and not (inputs and all(a.dtype == torch.float64 for a in inputs)):
            self.offenders.append(str(func))
        return out


def test_training_makes_float64_only_on_the_cpu(tmp_path):
    run = _train(tmp_path, epochs=1)
    x = torch.rand(100, 12).round()
    config = TrainConfig(epochs=2, batch_size=32)
    with _Float64Watch() as watch:
        fit(run.model, x, x[:40], config, run_directory(run.dir, config, run.dataset_meta, log=lambda s: None),
            resume=load_checkpoint(run.dir), progress=False, log=lambda s: None)
    assert watch.offenders == []


@pytest.mark.parametrize("device, version, fused", [
    ("cpu", "2.1.2", False), ("cpu", "2.3.1+cpu", False), ("cpu", "2.4.0", True), ("cpu", "2.13.0+cpu", True),
    ("cuda", "2.1.0", True), ("mps", "2.13.0", False)])
def test_fused_adam_only_where_torch_has_it(device, version, fused):
    assert fused_adam(torch.device(device), version) is fused


def test_a_colouring_the_adapter_does_not_have_is_refused_before_training(tmp_path):
    with pytest.raises(ChordVAEError, match="toy pictures can be coloured by nothing"):
        runs.train("toy", config=TrainConfig(epochs=1), out=tmp_path / "run", colour_by="corpus", log=lambda s: None)
    assert not (tmp_path / "run").exists()
