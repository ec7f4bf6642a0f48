"""How good is a model? Likelihood bounds, latent diagnostics and baselines, in nats per example."""
from __future__ import annotations

from typing import Any, Callable

import torch

from tqdm.auto import tqdm

from .baselines import EmpiricalSets, IndependentBernoulli
from .batch import Events
from .plane import distinct_events
from .train import METRIC_KEYS
from .vae import VAE, iwae_nll

#: K-sample IWAE estimates evaluate spends at most on a large data set: their Monte-Carlo noise on
#: the chord model is a few thousandths of a nat (benchmarks/evaluation.py)
IWAE_BUDGET = 4096


@torch.no_grad()
def latent_diagnostics(model: VAE, x: Events, threshold: float = 0.01) -> dict[str, Any]:
    """Active units (dimensions whose posterior mean varies across ``x`` by more than
    ``threshold``, Burda et al.'s A_u = Cov_x(E_q[z])) and the mean KL per dimension (for a
    mixture prior the marginal one, :func:`chordvae.priors.marginal_kl`: ``kl_marginal`` True),
    over the units :meth:`chordvae.vae.VAE.codes` gives (examples; the frames of a model with a
    latent per frame)."""
    codes = [model.codes(x[i:i + 1024]) for i in range(0, len(x), 1024)]
    mu = torch.cat([c[0] for c in codes])
    variance = mu.var(0) if len(mu) > 1 else torch.zeros(mu.shape[1])
    active = (variance > threshold).nonzero().flatten().tolist()
    return {"active_units": len(active), "latent_dim": mu.shape[1], "active": active,
            "mean_variance": variance.tolist(),
            "kl_per_dim": torch.cat([c[1] for c in codes]).mean(0).tolist(),
            "kl_marginal": not model.kl_closed_form}


def kl_dims_text(latent: dict[str, Any], unit: str = "") -> str:
    """The report's KL per dimension (``unit`` after it), or why there is none."""
    if latent["kl_per_dim"] is None:       # a report written before marginal KLs were reported
        return "(prior: a Gaussian mixture, no closed-form KL per dimension)"
    kind = "KL per dimension against the mixture prior's marginal" if latent.get("kl_marginal") else "KL per dimension"
    return f"({kind}{unit}: {', '.join(f'{v:.2f}' for v in latent['kl_per_dim'])})"


def bernoulli_baselines(x_train: torch.Tensor, x_eval: torch.Tensor, weights: torch.Tensor,
                        train_groups: torch.Tensor | None = None) -> dict[str, Any]:
    """Baselines for events of independent values in [0, 1], fitted on ``x_train`` and scored on
    ``x_eval`` ``(M, *shape)`` weighted by ``weights`` ``(M,)`` (nats per example): independent
    Bernoulli always; the empirical set distribution for binary data of at most 24 dimensions, its
    smoothing chosen by cross-validation over ``train_groups``. Returns the report's ``dims``,
    ``baselines`` and ``empirical_alpha``."""
    dims = int(x_eval[0].numel())
    w = weights.double() / weights.sum()
    out: dict[str, Any] = {"dims": dims}
    baselines = {"independent Bernoulli": (IndependentBernoulli().fit(x_train).nll(x_eval).double() @ w).item()}
    binary = bool(((x_train == 0) | (x_train == 1)).all())
    if binary and dims <= 24:
        empirical = EmpiricalSets().fit(x_train, train_groups)
        baselines["empirical sets"] = (empirical.nll(x_eval).double() @ w).item()
        out["empirical_alpha"] = empirical.alpha
    out["baselines"] = baselines
    return out


@torch.no_grad()
def weighted_losses(model: VAE, x: Events, weights: torch.Tensor, batch_size: int = 2048,
                    generator: torch.Generator | None = None, max_draws: int = 256) -> dict[str, float]:
    """Negative ELBO, reconstruction and KL (nats per example) averaged over ``x`` ``(M, ...)``
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
def weighted_iwae(model: VAE, x: Events, counts: torch.Tensor, k: int,
                  generator: torch.Generator | None = None, progress: bool = False,
                  budget: int = IWAE_BUDGET) -> tuple[float, int]:
    """The K-sample IWAE bound (nats per example) over events ``x`` ``(M, ...)`` that occur
    ``counts`` ``(M,)`` times, and the number of K-sample estimates it took.

    With at most ``budget`` occurrences in all, every occurrence gets its own estimate, as if the
    events were scored one by one. Beyond that each distinct event gets estimates in proportion
    to its count (at least one), ``budget`` in all, averaged: the same expected value, with the
    Monte-Carlo noise of ``budget`` events (an event's estimates vary from draw to draw, a lot for
    an event the model places badly). A progress bar counts the estimates when ``progress``."""
    total = int(counts.sum())
    repeats = counts if total <= budget else (counts * budget / total).round().clamp(min=1).long()
    weight = (counts.double() / repeats).repeat_interleave(repeats)
    rows = x[torch.arange(len(counts)).repeat_interleave(repeats)]
    nll = []
    with tqdm(total=len(rows), desc=f"IWAE bound, K={k}", unit="event", disable=None if progress else True,
              leave=False) as bar:
        for i in range(0, len(rows), 4096):
            nll.append(iwae_nll(model, rows[i:i + 4096], k, generator=generator))
            bar.update(len(nll[-1]))
    return (torch.cat(nll).double() @ weight).item() / total, len(rows)


@torch.no_grad()
def evaluate(model: VAE, x_train: Events, x_eval: Events, k: int, seed: int = 0,
             extra: dict[str, float] | None = None, train_groups: torch.Tensor | None = None,
             baselines: Callable[[Events, Events, torch.Tensor, torch.Tensor | None], dict[str, Any]]
             = bernoulli_baselines, distinct: bool = True, progress: bool = False,
             budget: int = IWAE_BUDGET) -> dict[str, Any]:
    """The full report on ``x_eval``: negative ELBO and its parts, the K-sample IWAE bound, latent
    diagnostics, ``extra`` figures (e.g. chord reconstruction), then what ``baselines(x_train,
    scored, weights, train_groups)`` adds (``dims`` and the ``baselines``' NLL; see
    :func:`bernoulli_baselines`). ``seed`` fixes the ELBO's and the IWAE bound's draws (each its
    own generator), so a report does not depend on torch's global state.

    With ``distinct`` (default; events that are tensors) each distinct event of ``x_eval`` is scored
    once and weighted by its count, the IWAE bound spends at most ``budget`` K-sample estimates (see
    :func:`weighted_iwae`), and the report adds the entropy of ``x_eval``'s own distribution of
    events, the floor of its NLL, against which NLLs of different corpora compare fairly (NLL minus
    entropy is the KL divergence from that distribution to the model). The figures equal those of
    scoring every event (exactly for the deterministic ones, up to Monte-Carlo noise for the draws),
    far faster when events repeat. ``progress`` shows a bar over the IWAE bound, the slow step.
    """
    model.eval()
    scored, weights = distinct_events(x_eval) if distinct else (x_eval, torch.ones(len(x_eval), dtype=torch.long))
    report: dict[str, Any] = {"examples": len(x_eval), "distinct_examples": len(scored)}
    report["elbo"] = weighted_losses(model, scored, weights, generator=torch.Generator().manual_seed(seed))
    nll, estimates = weighted_iwae(model, scored, weights, k, torch.Generator().manual_seed(seed), progress,
                                   budget if distinct else len(x_eval))
    report["iwae"] = {"k": k, "nll": nll, "estimates": estimates}
    report["latent"] = latent_diagnostics(model, x_eval)
    report["figures"] = extra or {}
    report.update(baselines(x_train, scored, weights, train_groups))
    if distinct and isinstance(x_eval, torch.Tensor):   # windows of sequences are never alike
        share = weights.double() / len(x_eval)
        entropy = -(share * share.log()).sum().item()
        report["own_floor"] = {"entropy": entropy, "vae_above": nll - entropy}
    return report


def format_report(report: dict[str, Any]) -> str:
    """A readable table: the model's figures, then where it stands among the baselines."""
    header = []
    if "on" in report:
        on = report["on"]
        scored = "every piece, seen or not" if on["include_seen"] else "the new pieces only"
        size = f"{report['examples']} events" if "examples" in report else f"{report['frames']} frames"
        header = [f"read {' '.join(on['sources'])}: {on['read']} pieces, {on['parts']}; "
                  f"scored {scored}: {on['pieces']} pieces, {size}; "
                  f"baselines fitted on the run's training split"]
    if report.get("kind") == "sequence":
        from .sequence import format_sequence_report
        return "\n".join(header + [format_sequence_report(report)])
    e, lat = report["elbo"], report["latent"]
    rows = [f"{report['examples']} examples ({report.get('distinct_examples', report['examples'])} distinct) "
            f"of {report['dims']} dimensions (nats per example)",
            f"  negative ELBO              {e['loss']:10.4f}",
            f"    reconstruction           {e['reconstruction_loss']:10.4f}",
            f"    KL                       {e['kl_loss']:10.4f}",
            f"  IWAE bound, K={report['iwae']['k']:<11d}{report['iwae']['nll']:10.4f}",
            f"  active latent units        {lat['active_units']:4d} of {lat['latent_dim']}   "
            f"{kl_dims_text(lat)}"]
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
        rows += ["  this data's own floor (compare corpora by the VAE's NLL above it, not by NLL alone):",
                 f"    entropy of its events' distribution {floor['entropy']:7.4f}",
                 f"    VAE (IWAE) above that entropy      {floor['vae_above']:7.4f}"]
    return "\n".join(header + rows)
