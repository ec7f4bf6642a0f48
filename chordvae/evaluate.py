"""How good is a model? Likelihood bounds, latent diagnostics and baselines, in nats per example."""
from __future__ import annotations

from typing import Any

import torch

from .baselines import EmpiricalSets, IndependentBernoulli
from .plots import posterior_means
from .train import evaluate_losses
from .vae import VAE, iwae_nll, kl_divergence


@torch.no_grad()
def latent_diagnostics(model: VAE, x: torch.Tensor, threshold: float = 0.01) -> dict[str, Any]:
    """Active units (dimensions whose posterior mean varies across ``x`` by more than
    ``threshold``, Burda et al.'s A_u = Cov_x(E_q[z])) and the mean KL per dimension."""
    mu = posterior_means(model, x)
    logvar = torch.cat([model.encode(x[i:i + 4096])[1] for i in range(0, len(x), 4096)])
    variance = mu.var(0) if len(mu) > 1 else torch.zeros(mu.shape[1])
    active = (variance > threshold).nonzero().flatten().tolist()
    return {"active_units": len(active), "latent_dim": model.latent_dim, "active": active,
            "mean_variance": variance.tolist(), "kl_per_dim": kl_divergence(mu, logvar).mean(0).tolist()}


@torch.no_grad()
def evaluate(model: VAE, x_train: torch.Tensor, x_eval: torch.Tensor, k: int, seed: int = 0,
             extra: dict[str, float] | None = None,
             train_groups: torch.Tensor | None = None) -> dict[str, Any]:
    """The full report: negative ELBO and its parts, the K-sample IWAE bound, latent
    diagnostics, ``extra`` figures (e.g. chord reconstruction) and the baselines' NLL
    (independent Bernoulli always; the empirical set distribution for binary data of at
    most 24 dimensions, its smoothing chosen by cross-validation over ``train_groups``),
    all fitted on ``x_train`` and scored on ``x_eval``."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    report: dict[str, Any] = {"examples": len(x_eval), "dims": int(x_eval[0].numel())}
    report["elbo"] = evaluate_losses(model, x_eval)
    report["iwae"] = {"k": k, "nll": iwae_nll(model, x_eval, k, generator=generator).mean().item()}
    report["latent"] = latent_diagnostics(model, x_eval)
    report["figures"] = extra or {}
    baselines = {"independent Bernoulli": IndependentBernoulli().fit(x_train).nll(x_eval).mean().item()}
    binary = bool(((x_train == 0) | (x_train == 1)).all())
    if binary and report["dims"] <= 24:
        empirical = EmpiricalSets().fit(x_train, train_groups)
        baselines["empirical sets"] = empirical.nll(x_eval).mean().item()
        report["empirical_alpha"] = empirical.alpha
    report["baselines"] = baselines
    return report


def format_report(report: dict[str, Any]) -> str:
    """A readable table: the model's figures, then where it stands among the baselines."""
    if report.get("kind") == "sequence":
        from .sequence import format_sequence_report
        return format_sequence_report(report)
    e, lat = report["elbo"], report["latent"]
    header = []
    if "on" in report:
        header = [f"scored on {' '.join(report['on']['sources'])}: {report['on']['pieces']} pieces, "
                  f"{report['examples']} events, never trained on; baselines fitted on the run's training split"]
    rows = [f"{report['examples']} examples of {report['dims']} dimensions (nats per example)",
            f"  negative ELBO              {e['loss']:10.4f}",
            f"    reconstruction           {e['reconstruction_loss']:10.4f}",
            f"    KL                       {e['kl_loss']:10.4f}",
            f"  IWAE bound, K={report['iwae']['k']:<11d}{report['iwae']['nll']:10.4f}",
            f"  active latent units        {lat['active_units']:4d} of {lat['latent_dim']}   "
            f"(KL per dimension: {', '.join(f'{v:.2f}' for v in lat['kl_per_dim'])})"]
    for name, value in report["figures"].items():
        rows.append(f"  {name.replace('_', ' '):26s} {value:10.4f}")
    rows.append("  -log p(x), lower is better:")
    ranking = sorted([(f"VAE (IWAE, K={report['iwae']['k']})", report["iwae"]["nll"])]
                     + list(report["baselines"].items()), key=lambda r: -r[1])
    rows += [f"    {name:26s} {value:10.4f}" for name, value in ranking]
    if "empirical_alpha" in report:
        rows.append(f"  (empirical sets: smoothing alpha = {report['empirical_alpha']:.4g}, "
                    f"chosen by cross-validation on the training data)")
    return "\n".join(header + rows)
