"""Evaluation: the IWAE bound against an exactly integrated -log p(x); baselines by hand; diagnostics."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from click.testing import CliRunner

from chordvae.baselines import EmpiricalSets, IndependentBernoulli
from chordvae.cli import main
from chordvae.evaluate import distinct_events, evaluate, iwae_nll, latent_diagnostics
from chordvae.vae import VAE, BernoulliDecoder, ModelConfig, bernoulli_nll

X = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])


def tiny_model() -> VAE:
    """1-D latent, 3 binary dimensions, fixed weights: small enough to integrate p(x) exactly."""
    torch.manual_seed(3)
    encoder, decoder = nn.Linear(3, 2), nn.Linear(1, 3)
    with torch.no_grad():
        decoder.weight.mul_(2.0)
        encoder.weight[1].zero_()
        encoder.bias[1] = 0.0   # q(z|x) = N(mu(x), 1): wider than the true posterior, so IWAE converges
    return VAE(ModelConfig("mlp", (3,), latent_dim=1), encoder, BernoulliDecoder(decoder, (3,))).eval()


@torch.no_grad()
def exact_nll(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """-log ∫ p(x|z) N(z; 0, 1) dz by the trapezoid rule on 20,001 points over [-10, 10]."""
    z = torch.linspace(-10, 10, 20001, dtype=torch.float64).unsqueeze(1)
    logits = model.decoder(z.float()).double()
    log_prior = -0.5 * z.squeeze(1) ** 2 - 0.5 * math.log(2 * math.pi)
    out = []
    for row in x:
        log_px_z = -bernoulli_nll(logits, row.double().expand_as(logits))
        integrand = torch.exp(log_px_z + log_prior)
        out.append(-torch.log(torch.trapezoid(integrand, z.squeeze(1))))
    return torch.stack(out)


def test_iwae_bounds_the_true_nll_from_above_and_closes_in_as_k_grows():
    model = tiny_model()
    truth = exact_nll(model, X)
    g = torch.Generator().manual_seed(0)
    gaps = {k: (torch.stack([iwae_nll(model, X, k, generator=g) for _ in range(200)]).mean(0) - truth).mean().item()
            for k in (1, 10, 100, 1000)}
    assert all(gap > -0.01 for gap in gaps.values()), gaps   # an upper bound (up to Monte-Carlo error)
    assert gaps[1] > gaps[10] > gaps[100] > 0.0, gaps        # tighter with more samples
    assert gaps[1] > 0.5 and abs(gaps[1000]) < 0.01, gaps


def test_k1_is_the_elbo_in_expectation():
    model = tiny_model()
    g = torch.Generator().manual_seed(1)
    iwae1 = torch.stack([iwae_nll(model, X, 1, generator=g) for _ in range(4000)]).mean(0)
    torch.manual_seed(1)
    elbo = torch.stack([model.loss(X).loss for _ in range(4000)]).mean(0)
    torch.testing.assert_close(iwae1, elbo.double(), atol=0.03, rtol=0)


def test_iwae_does_not_depend_on_batching():
    model = tiny_model()
    g = torch.Generator().manual_seed(2)
    a = torch.stack([iwae_nll(model, X, 50, batch_size=4, chunk=50, generator=g) for _ in range(300)]).mean(0)
    b = torch.stack([iwae_nll(model, X, 50, batch_size=1, chunk=7, generator=g) for _ in range(300)]).mean(0)
    assert (a - b).abs().max() < 0.03, (a, b)


def test_the_report_does_not_depend_on_the_global_random_state():
    model = tiny_model()
    reports = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        reports.append(evaluate(model, X, X, k=20, seed=5))
    assert reports[0]["elbo"] == reports[1]["elbo"] and reports[0]["iwae"] == reports[1]["iwae"]
    assert evaluate(model, X, X, k=20, seed=6)["elbo"] != reports[0]["elbo"]   # the seed does choose the draws


def test_scoring_each_distinct_event_once_gives_the_figures_of_scoring_every_event():
    """Weighted by their counts, the distinct events give the report of all 600 events: exactly
    for the deterministic figures, within Monte-Carlo noise for the ELBO and IWAE draws, also
    when the IWAE bound may spend fewer estimates than there are events."""
    model = tiny_model()
    counts = torch.tensor([300, 150, 100, 50])
    x = X.repeat_interleave(counts, 0)[torch.randperm(600, generator=torch.Generator().manual_seed(0))]
    rows, found = distinct_events(x)
    assert sorted(found.tolist()) == [50, 100, 150, 300] and len(rows) == 4
    slow = evaluate(model, X.repeat(5, 1), x, k=2000, seed=1, distinct=False)
    truth = (exact_nll(model, X) * counts / 600).sum().item()
    assert slow["iwae"]["nll"] == pytest.approx(truth, abs=0.01) and slow["iwae"]["estimates"] == 600
    for budget, estimates in ((10_000, 600), (60, 60)):   # 60: 30, 15, 10 and 5 estimates per chord
        fast = evaluate(model, X.repeat(5, 1), x, k=2000, seed=1, budget=budget)
        assert fast["iwae"]["estimates"] == estimates and fast["distinct_examples"] == 4
        assert fast["baselines"] == pytest.approx(slow["baselines"], rel=1e-12)
        assert "own_floor" not in slow   # the data's own floor needs its distinct events
        assert fast["latent"] == slow["latent"] and fast["examples"] == 600
        # this model's q is poor on purpose, so its estimates vary: over seeds 0-5, 600 of them
        # erred by < 0.002 nats, 60 by < 0.004 (one per distinct chord: up to 0.03)
        assert fast["iwae"]["nll"] == pytest.approx(truth, abs=0.01)
        assert fast["elbo"]["kl_loss"] == pytest.approx(slow["elbo"]["kl_loss"], rel=1e-5)   # closed form
        assert fast["elbo"]["loss"] == pytest.approx(slow["elbo"]["loss"], abs=0.15)         # seeds 0-5: < 0.07
    shares = counts / 600
    assert fast["own_floor"]["entropy"] == pytest.approx(-(shares * shares.log()).sum().item())


def test_independent_bernoulli_by_hand():
    model = IndependentBernoulli().fit(X)   # counts per column 3, 2, 2 of 4 -> p = 4/6, 3/6, 3/6
    p = [4 / 6, 3 / 6, 3 / 6]
    expected = -(math.log(1 - p[0]) + math.log(1 - p[1]) + math.log(1 - p[2]))
    assert model.nll(X[:1]).item() == pytest.approx(expected)
    expected = -(math.log(p[0]) + math.log(p[1]) + math.log(p[2]))
    assert model.nll(X[3:]).item() == pytest.approx(expected)


def test_empirical_sets_by_hand():
    train = torch.cat([X, X[1:2], X[1:2]])   # {000: 1, 101: 3, 110: 1, 111: 1}, N = 6
    model = EmpiricalSets(alpha=0.5).fit(train)
    total = 6 + 0.5 * 8
    assert model.nll(X[1:2]).item() == pytest.approx(-math.log(3.5 / total))
    assert model.nll(torch.tensor([[0.0, 1.0, 0.0]])).item() == pytest.approx(-math.log(0.5 / total))
    probs = torch.exp(-model.nll(torch.tensor([[a, b, c] for a in (0., 1.) for b in (0., 1.) for c in (0., 1.)])))
    assert probs.sum().item() == pytest.approx(1.0)


def test_an_ignored_latent_dimension_is_inactive():
    encoder = nn.Linear(3, 4)
    with torch.no_grad():
        encoder.weight[1].zero_()   # the mean of z[1] never changes with x
    model = VAE(ModelConfig("mlp", (3,), latent_dim=2), encoder, nn.Linear(2, 3)).eval()
    diag = latent_diagnostics(model, torch.bernoulli(torch.full((200, 3), 0.5)))
    assert diag["active"] == [0] and diag["active_units"] == 1 and len(diag["kl_per_dim"]) == 2


def test_evaluate_command_on_a_short_chord_run(tmp_path):
    from pathlib import Path
    data = Path(__file__).resolve().parents[1] / "data" / "midi"
    out = tmp_path / "run"
    runner = CliRunner()
    assert runner.invoke(main, ["train", "--dataset", "chords", str(data), "--epochs", "2", "--out", str(out),
                                "-q"]).exit_code == 0
    result = runner.invoke(main, ["evaluate", str(out), "--iw-samples", "50"])
    assert result.exit_code == 0, result.output
    for figure in ("negative ELBO", "IWAE bound, K=50", "active latent units", "exact set rate",
                   "pitch class accuracy", "independent Bernoulli", "empirical sets"):
        assert figure in result.output
    import json
    report = json.loads((out / "evaluation-validation.json").read_text())
    assert report["iwae"]["k"] == 50 and report["baselines"]["empirical sets"] < report["baselines"]["independent Bernoulli"]


def test_evaluate_command_on_a_short_mnist_run(shared_mnist, tmp_path):
    out = tmp_path / "run"
    runner = CliRunner()
    assert runner.invoke(main, ["train", "--dataset", "mnist", "--data-dir", str(shared_mnist), "--arch", "mlp",
                                "--hidden", "64", "--epochs", "1", "--out", str(out), "-q"]).exit_code == 0
    result = runner.invoke(main, ["evaluate", str(out), "--iw-samples", "5", "--json"])
    assert result.exit_code == 0, result.output
    import json
    report = json.loads(result.output)
    assert report["iwae"]["nll"] <= report["elbo"]["loss"] + 1.0
    assert "independent Bernoulli" in report["baselines"] and "empirical sets" not in report["baselines"]
