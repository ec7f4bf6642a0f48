"""How good is a model? Likelihood bounds, latent diagnostics and baselines, in nats per example."""
from __future__ import annotations

from typing import Any

import torch

from tqdm.auto import tqdm

from .baselines import EmpiricalSets, IndependentBernoulli, cross_validated_nll
from .plots import posterior_means
from .train import METRIC_KEYS
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


def distinct_events(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct events of ``x`` ``(N, *shape)`` as ``(M, *shape)`` and how often each occurs ``(M,)``."""
    rows, counts = torch.unique(x.flatten(1), dim=0, return_counts=True)
    return rows.view(-1, *x.shape[1:]), counts


@torch.no_grad()
def weighted_losses(model: VAE, x: torch.Tensor, weights: torch.Tensor, batch_size: int = 2048,
                    generator: torch.Generator | None = None, max_draws: int = 256) -> dict[str, float]:
    """Negative ELBO, reconstruction and KL (nats per example) averaged over ``x`` ``(M, *shape)``
    with integer ``weights`` ``(M,)`` (how often each distinct event occurs). Each event's
    reconstruction term averages min(largest weight, ``max_draws``) z draws, so a frequent event
    is estimated no worse than from one draw per occurrence, up to that cap."""
    draws = int(min(int(weights.max()), max_draws)) if len(weights) else 1
    batch_size = max(1, batch_size // draws)
    sums = torch.zeros(3, dtype=torch.float64)
    for i in range(0, len(x), batch_size):
        out = model.loss(x[i:i + batch_size], samples=draws, generator=generator)
        w = weights[i:i + batch_size].double()
        sums += torch.stack([out.loss, out.reconstruction, out.kl]).double() @ w
    return dict(zip(METRIC_KEYS, (sums / weights.double().sum()).tolist()))


@torch.no_grad()
def weighted_iwae(model: VAE, x: torch.Tensor, weights: torch.Tensor, k: int,
                  generator: torch.Generator | None = None, progress: bool = False,
                  rows_per_step: int = 4096) -> float:
    """The K-sample IWAE bound (nats per example) averaged over ``x`` ``(M, *shape)`` with
    ``weights`` ``(M,)``; a progress bar over the events when ``progress``."""
    nll = []
    with tqdm(total=len(x), desc=f"IWAE bound, K={k}", unit="event", disable=None if progress else True,
              leave=False) as bar:
        for i in range(0, len(x), rows_per_step):   # a multiple of iwae_nll's batch: the same draws
            nll.append(iwae_nll(model, x[i:i + rows_per_step], k, generator=generator))
            bar.update(len(nll[-1]))
    return (torch.cat(nll) @ weights.double() / weights.double().sum()).item()


@torch.no_grad()
def evaluate(model: VAE, x_train: torch.Tensor, x_eval: torch.Tensor, k: int, seed: int = 0,
             extra: dict[str, float] | None = None,
             train_groups: torch.Tensor | None = None, eval_groups: torch.Tensor | None = None,
             distinct: bool = True, progress: bool = False) -> dict[str, Any]:
    """The full report: negative ELBO and its parts, the K-sample IWAE bound, latent
    diagnostics, ``extra`` figures (e.g. chord reconstruction) and the baselines' NLL
    (independent Bernoulli always; the empirical set distribution for binary data of at
    most 24 dimensions, its smoothing chosen by cross-validation over ``train_groups``),
    all fitted on ``x_train`` and scored on ``x_eval``. For such data it adds ``x_eval``'s own
    floor: the entropy of its distinct events and the empirical sets cross-validated on
    ``x_eval`` itself (folds of whole ``eval_groups``), against which NLLs of different
    corpora compare fairly.

    With ``distinct`` (default) each distinct event of ``x_eval`` is scored once and weighted
    by its count: the same figures as scoring every event (exactly for the deterministic ones,
    up to Monte-Carlo noise for the ELBO and IWAE draws), far faster when events repeat.
    ``progress`` shows a bar over the IWAE bound, the slow step.
    """
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    rows, counts = distinct_events(x_eval)
    scored, weights = (rows, counts) if distinct else (x_eval, torch.ones(len(x_eval), dtype=torch.long))
    report: dict[str, Any] = {"examples": len(x_eval), "distinct_examples": len(rows), "dims": int(x_eval[0].numel())}
    report["elbo"] = weighted_losses(model, scored, weights, generator=generator)
    report["iwae"] = {"k": k, "nll": weighted_iwae(model, scored, weights, k, generator, progress)}
    report["latent"] = latent_diagnostics(model, x_eval)
    report["figures"] = extra or {}
    w = weights.double() / weights.sum()
    baselines = {"independent Bernoulli": (IndependentBernoulli().fit(x_train).nll(scored) @ w).item()}
    binary = bool(((x_train == 0) | (x_train == 1)).all())
    if binary and report["dims"] <= 24:
        empirical = EmpiricalSets().fit(x_train, train_groups)
        baselines["empirical sets"] = (empirical.nll(scored) @ w).item()
        report["empirical_alpha"] = empirical.alpha
        if len(x_eval) >= 2:
            floor = cross_validated_nll(x_eval, eval_groups)
            share = counts.double() / len(x_eval)
            report["own_floor"] = {"entropy": -(share * share.log()).sum().item(), "empirical sets": floor,
                                   "vae_above": report["iwae"]["nll"] - floor}
    report["baselines"] = baselines
    return report


def format_report(report: dict[str, Any]) -> str:
    """A readable table: the model's figures, then where it stands among the baselines."""
    e, lat = report["elbo"], report["latent"]
    header = []
    if "on" in report:
        on = report["on"]
        scored = "every piece, seen or not" if on["include_seen"] else "the new pieces only"
        header = [f"read {' '.join(on['sources'])}: {on['read']} pieces, {on['parts']}; "
                  f"scored {scored}: {on['pieces']} pieces, {report['examples']} events; "
                  f"baselines fitted on the run's training split"]
    rows = [f"{report['examples']} examples ({report.get('distinct_examples', report['examples'])} distinct) "
            f"of {report['dims']} dimensions (nats per example)",
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
    if "own_floor" in report:
        floor = report["own_floor"]
        rows += ["  this data's own floor (NLLs of different corpora compare by their distance to it):",
                 f"    entropy of its events' distribution {floor['entropy']:10.4f}",
                 f"    empirical sets cross-validated on it {floor['empirical sets']:9.4f}",
                 f"    VAE (IWAE) above that floor      {floor['vae_above']:10.4f}"]
    return "\n".join(header + rows)
