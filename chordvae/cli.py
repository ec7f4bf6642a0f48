"""The ``chordvae`` command: a thin layer over :mod:`chordvae.runs` and friends."""
from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Any, Collection

import click

from .chords.segment import SEGMENT_MODES
from .errors import ChordVAEError, TrainingInterrupted


class _Group(click.Group):
    """Every user mistake ends in one line on stderr and a non-zero exit, never a traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.ClickException as e:
            click.echo(f"error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except ChordVAEError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except OSError as e:  # a file-system refusal: name the path, never a traceback
            click.echo(f"error: {_os_message(e)}", err=True)
            sys.exit(1)
        except (click.Abort, KeyboardInterrupt) as e:   # click turns Ctrl-C into Abort, keeping it as the cause
            click.echo(_interrupted(e.__cause__ if isinstance(e, click.Abort) else e), err=True)
            sys.exit(130)
        sys.exit(code or 0)


def _interrupted(e: BaseException | None) -> str:
    """What Ctrl-C leaves behind: during training, how to continue the run."""
    if not isinstance(e, TrainingInterrupted):
        return "interrupted"
    if e.resumable:
        return f"interrupted; `chordvae train --resume {e.run_dir}` continues the run"
    return f"interrupted before the first epoch ended: {e.run_dir} holds no checkpoint to resume"


def _os_message(e: OSError) -> str:
    """``cannot use PATH: REASON`` for an OSError (both paths when it has two)."""
    paths = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
    reason = e.strerror or str(e) or type(e).__name__
    if e.errno == errno.ENOSPC:
        reason = f"the disk is full ({reason})"
    return f"cannot use {paths}: {reason}" if paths else reason


#: an output file: refused early when it is an existing folder
OUT_FILE = click.Path(dir_okay=False, writable=True)


def _ints(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated whole numbers, got {text!r}") from None


def _given(names: Collection[str], exclude: bool = False) -> list[str]:
    """The options among ``names`` (or, with ``exclude``, all others) that the user set."""
    ctx = click.get_current_context()
    given = []
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if (param.name in names) != exclude and source is not None and source.name != "DEFAULT":
            given.append(param.opts[0] if param.opts[0].startswith("-") else param.name.upper())
    return given


def _apply(options: list, f):
    for option in reversed(options):
        f = option(f)
    return f


def colour_option(f):
    """``--colour-by`` (also ``--color-by``) for the pictures of train and plot."""
    return click.option("--colour-by", "--color-by", "colour_by",
                        type=click.Choice(["quality", "root", "corpus", "mode", "cadence"]), default=None,
                        help="chords: colour the pictures by chord quality (default), root or corpus; "
                             "progressions: the map by corpus (default), key mode or cadence")(f)


def chord_options(f):
    """Segmentation options shared by ``train`` and ``extract`` (defaults: see the README)."""
    return _apply([
        click.option("--segment", type=click.Choice(SEGMENT_MODES), default=None,
                     help="chords: recognise chords (chords, the default), or slice what sounds at every "
                          "change of notes (onset), per beat, or per bar"),
        click.option("--threshold", type=click.FloatRange(0, 1), default=None,
                     help="chords (beat/bar): fraction of the unit a pitch class must sound to count (default 0.5)"),
        click.option("--min-notes", type=click.IntRange(1, 12), default=None,
                     help="chords: drop events with fewer distinct pitch classes (default 3)"),
        click.option("--min-duration", type=click.FloatRange(0), default=None,
                     help="chords: drop events shorter than this many beats (default 0.25)"),
        click.option("--jobs", type=click.IntRange(1), default=None,
                     help="chords: parallel parsing processes (default: all cores)"),
        click.option("--strict", is_flag=True, help="chords: stop at the first unreadable file"),
        click.option("--no-cache", is_flag=True, help="chords: parse every file again"),
    ], f)


def vector_options(f):
    """How chords become vectors, shared by ``train`` and ``curve``."""
    return _apply([
        click.option("--features", type=click.Choice(["pitch-class", "pitch-class+bass"]), default=None,
                     help="chords: 12 pitch classes, or those plus a 12-dim one-hot bass"),
        click.option("--transpose", type=click.Choice(["none", "all", "c", "random"]), default=None,
                     help="keep keys, augment with all 12 transpositions, move each piece to C major / "
                          "A minor, or train on each event in a random key every epoch, held-out events "
                          "keeping theirs (default: chords none, progressions random)"),
        click.option("--pitch-set", type=click.Choice(["chord", "sounding"]), default=None,
                     help="chords: vectors from each recognised chord's set (chord, the default) or from the "
                          "pitch classes that sounded"),
    ], f)


def _chord_opts(kw: dict[str, Any]):
    """Pop the chord options out of a command's keyword arguments as one ChordOptions."""
    from .chords.options import ChordOptions

    return ChordOptions.from_dict({k: kw.pop(k) for k in ChordOptions.names() if k in kw})


def _progression_options(chords: Any, bars: int | None) -> dict[str, Any]:
    """The progression dataset's options from the chord options it takes and ``--bars`` (an
    option not given keeps the progression default: ``--transpose`` is ``random`` there)."""
    return {"bars": bars, "transpose": chords.transpose if _given(("transpose",)) else None,
            "jobs": chords.jobs, "strict": chords.strict, "no_cache": chords.no_cache}


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True,
                        help="no progress bars (nor, reading chords, a line per skipped file)")(f)


CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.group(cls=_Group, context_settings=CONTEXT, invoke_without_command=True)
@click.version_option(package_name="chordvae")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Learn and explore a latent space of chords (or digits) with a variational autoencoder."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


#: the only train options a resumed run accepts: everything else comes from its checkpoint
CHANGEABLE_ON_RESUME = ("resume", "epochs", "threads", "quiet")
IMAGE_ONLY = ("data_dir", "split")
#: the chord options that --dataset progressions takes (its chords are always recognised)
PROGRESSION_CHORD_OPTIONS = ("transpose", "jobs", "strict", "no_cache")


@main.command()
@click.option("--dataset", "-d", default=None,
              help="mnist, fashion-mnist, chords, or a plug-in's name (not with --resume)")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--data-dir", type=click.Path(), help="mnist: folder holding the IDX .gz files")
@click.option("--split", type=click.Choice(["official", "all"]), default=None,
              help="mnist: validate on the test split (official) or also train on it (all)")
@chord_options
@vector_options
@click.option("--bars", type=click.IntRange(1), default=None,
              help="progressions: bars per window (default 4)")
@click.option("--arch", type=click.Choice(["conv", "mlp"]), default=None, help="network (default: the dataset's)")
@click.option("--latent-dim", type=click.IntRange(1), default=None,
              help="latent size, per frame for a latent per frame (default: the dataset's; MNIST 2, "
                   "chords 4, progressions 2 per beat)")
@click.option("--hidden", default=None, help="mlp hidden sizes, e.g. 400 or 256,128")
@click.option("--epochs", type=click.IntRange(1), default=None,
              help="at most this many epochs (with --resume: up to this many in all); "
                   "default: the dataset's (MNIST 30, chords 1000, progressions 19 or, on a smaller "
                   "corpus, as many as make 8,000 updates)")
@click.option("--patience", type=click.IntRange(0), default=None,
              help="stop after this many epochs without a better validation loss, keeping the best "
                   "weights; 0 runs every epoch (default: the dataset's; chords 100, MNIST 0)")
@click.option("--min-delta", type=click.FloatRange(0), default=None,
              help="improvement of the validation loss (nats) that counts (default 0)")
@click.option("--lr-patience", type=click.IntRange(0), default=None,
              help="multiply the learning rate by --lr-factor after this many epochs without "
                   "improvement; 0 keeps it (default: the dataset's; chords 30, MNIST 0)")
@click.option("--lr-factor", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="learning-rate reduction factor (default 0.5)")
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="examples per Adam step (default: the dataset's, 128)")
@click.option("--lr", "learning_rate", type=click.FloatRange(0, min_open=True), default=None,
              help="Adam learning rate (default: the dataset's, 1e-3)")
@click.option("--weight-decay", type=click.FloatRange(0), default=None,
              help="decoupled weight decay per step, as a fraction of the learning rate (AdamW; default 0)")
@click.option("--beta", type=click.FloatRange(0), default=None,
              help="KL weight (default: the dataset's; MNIST 1, chords 0.5)")
@click.option("--warmup", "warmup_epochs", type=click.IntRange(0), default=None,
              help="epochs of linear KL warm-up (default 0)")
@click.option("--free-bits", type=click.FloatRange(0), default=None,
              help="KL floor per latent dimension (nats; default 0)")
@click.option("--free-bits-epochs", type=click.IntRange(0), default=None,
              help="the KL floor holds during this many first epochs only (default 0: always)")
@click.option("--refit-epochs", type=click.IntRange(0), default=None,
              help="the last this many epochs refit the posterior and the prior with the decoder frozen "
                   "(default: the dataset's; progressions 3, else 0)")
@click.option("--mc-samples", type=click.IntRange(1), default=None,
              help="z samples per example (default 1)")
@click.option("--objective", type=click.Choice(["elbo", "iwae"]), default=None,
              help="train on the ELBO, or on the importance-weighted bound with --mc-samples draws "
                   "(default: the dataset's, elbo)")
@click.option("--seed", type=int, default=0, show_default=True,
              help="fixes the split, the initialisation and the batch order")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="run directory (default runs/<dataset>-<date>-<time>)")
@click.option("--resume", type=click.Path(), default=None,
              help="continue the run in this directory (up to --epochs); nothing else is needed")
@quiet_option
@colour_option
def train(dataset: str | None, paths: tuple[str, ...], data_dir: str | None, split: str | None,
          arch: str | None, latent_dim: int, hidden: str | None, out: str | None,
          resume: str | None, quiet: bool, colour_by: str | None, **kw: Any) -> None:
    """Train a VAE on a dataset; chords read PATHS: files, folders (a folder's subfolders are
    corpora named after them), NAME=PATH or m21:COMPOSER (see `chordvae corpora`)."""
    from . import runs

    if resume:
        fixed = _given(CHANGEABLE_ON_RESUME, exclude=True)
        if fixed:
            raise click.UsageError(f"--resume continues {resume} as it was configured; "
                                   f"{', '.join(fixed)} cannot change (only --epochs, --threads, --quiet)")
        epochs = kw["epochs"] if _given(("epochs",)) else None
        run = runs.resume(resume, epochs=epochs, threads=kw["threads"], progress=not quiet)
    else:
        if dataset is None:
            raise click.UsageError("--dataset is required (or --resume RUN_DIR)")
        from .chords.options import ChordOptions

        if dataset == "progressions":
            misplaced = _given(IMAGE_ONLY + tuple(n for n in ChordOptions.names() if n not in PROGRESSION_CHORD_OPTIONS))
        else:
            misplaced = _given(IMAGE_ONLY if dataset == "chords" else ChordOptions.names())
        if misplaced and dataset in ("chords", "mnist", "fashion-mnist", "progressions"):
            raise click.UsageError(f"{', '.join(misplaced)} do not apply to --dataset {dataset}")
        chords = _chord_opts(kw)
        bars = kw.pop("bars")
        if dataset == "progressions":
            options = _progression_options(chords, bars)
        elif bars is not None:
            raise click.UsageError(f"--bars does not apply to --dataset {dataset}")
        else:
            options = chords if dataset == "chords" else {"data_dir": data_dir, "split": split}
        config = runs.training_config(dataset, **{k: v for k, v in kw.items() if v is not None})
        run = runs.train(dataset, paths, options=options, arch=arch, latent_dim=latent_dim,
                         hidden=_ints(hidden), config=config, out=out, progress=not quiet,
                         colour_by=colour_by)
    click.echo(f"run directory: {run.dir}")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--out", "-o", type=OUT_FILE, required=True,
              help="JSON Lines file to write; skipped files are listed in skipped.tsv beside it")
@chord_options
@quiet_option
def extract(paths: tuple[str, ...], out: str, quiet: bool, **kw: Any) -> None:
    """Write the chord events of PATHS (default: music21's Bach chorales), one JSON object per line."""
    from .chords.options import read

    corpus = read(list(paths), _chord_opts(kw), progress=not quiet)
    corpus.write_jsonl(out)
    skipped = Path(out).parent / "skipped.tsv"
    corpus.write_skipped(skipped)
    click.echo(corpus.summary())
    click.echo(f"wrote {corpus.n_events} chord events to {out}"
               + (f", the {len(corpus.skipped)} skipped files to {skipped}" if corpus.skipped else ""))


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--grid", "n", type=click.IntRange(2), default=None,
              help="grid size n x n (default: 30 for images, 12 for chords)")
@click.option("--scale", type=click.FloatRange(0, min_open=True), default=None,
              help="latent_space.png covers [-scale, scale] in each direction of the plane "
                   "(default: where the data lie; images: 1, as the Keras example)")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="folder for the pictures (default: the run directory, where existing pictures "
                   "are replaced only with --overwrite)")
@click.option("--overwrite", is_flag=True, help="replace the pictures already in the run directory")
@quiet_option
@colour_option
def plot(run_dir: str, n: int, scale: float | None, out: str | None, overwrite: bool, quiet: bool,
         colour_by: str | None) -> None:
    """Draw a run's pictures from its checkpoint (its data is read again), into -o DIR or the run."""
    from . import runs

    into_run = out is None or Path(out).resolve() == Path(run_dir).resolve()
    if into_run and not overwrite and Path(run_dir).is_dir() and any(Path(run_dir).glob("*.png")):
        raise click.UsageError(f"{run_dir} already has its pictures; give -o DIR to draw them elsewhere, "
                               "or --overwrite to replace them")
    for path in runs.draw_pictures(_load_run(run_dir, progress=not quiet), n=n, scale=scale,
                                   colour_by=colour_by, out=out):
        click.echo(path)


def render_options(f):
    """How decoded events become notes (chords) or pictures (images): a RenderOptions."""
    return _apply([
        click.option("--out", "-o", type=OUT_FILE, required=True,
                     help="chords: .mid or .musicxml; images: .png"),
        click.option("--min-prob", type=click.FloatRange(0, 1), default=None,
                     help="chords: pitch classes with at least this probability sound (default 0.5)"),
        click.option("--notes", type=click.IntRange(1, 12), default=None,
                     help="chords: the K most probable pitch classes instead of --min-prob"),
        click.option("--bpm", type=click.FloatRange(1), default=None, help="chords: tempo (default 90)"),
        click.option("--beats", type=click.FloatRange(0, min_open=True), default=None,
                     help="chords: length of each chord in beats (default 2)"),
        click.option("--program", type=click.IntRange(0, 127), default=None,
                     help="chords: General MIDI instrument (default 0, piano)"),
        click.option("--velocity", type=click.IntRange(1, 127), default=None, help="chords: loudness (default 80)"),
        click.option("--wav", type=OUT_FILE, default=None, help="chords: also render audio with FluidSynth"),
        click.option("--soundfont", type=click.Path(dir_okay=False), default=None,
                     help="chords: General MIDI SoundFont (default: Debian's usual places)"),
    ], f)


def _render(run, z, out: str, **options: Any) -> None:
    from . import explore
    from .listen.midi import RenderOptions

    options.setdefault("beats_per_bar", run.dataset_meta.extra.get("beats_per_bar"))
    render = RenderOptions(**{k: v for k, v in options.items() if v is not None})
    for line in run.adapter.render(explore.decode(run.model, z), Path(out), render):
        click.echo(line)
    click.echo(f"wrote {out}")


def key_option(f):
    """``--key`` for Roman numerals typed as progressions."""
    return click.option("--key", default=None,
                        help="progressions: the key of Roman numerals (\"I V vi IV\" --key D, --key a for A minor; "
                             "default C)")(f)


def _event(run, text: str, key: str | None = None):
    """The event the adapter parses from ``text`` as a batch of one (``key``: of typed Roman numerals)."""
    from .batch import Masked

    if key is not None and run.dataset != "progressions":
        raise click.UsageError("--key applies to progression runs (Roman numerals)")
    event = run.adapter.parse_event(text, run.dataset_meta, **({"key": key} if key is not None else {}))
    return event if isinstance(event, Masked) else event.unsqueeze(0)   # a sequence adapter gives a window


def _load_run(run_dir: str, **kwargs: Any):
    """:func:`chordvae.runs.load_run`, with torch on the cores that are idle
    (:func:`chordvae.threads.use_idle_cores`)."""
    from .runs import load_run
    from .threads import use_idle_cores

    use_idle_cores()
    return load_run(run_dir, **kwargs)


def _point(run, text: str, key: str | None = None):
    """A latent point from ``z:...`` (raw), ``xy:...`` (the pictures' plane) or from an event the
    adapter parses (``key``: of typed Roman numerals): its posterior mean, or for a sequence run
    a point that decodes back to it (:func:`chordvae.explore.point_of`; a note if none is found)."""
    from . import explore

    if explore.is_point(text):
        return explore.parse_point(text, run.model.latent_dim,
                                   run.latent_plane() if explore.is_plane_point(text) else None)
    z, exact = explore.point_of(run.model, _event(run, text, key))
    if not exact:
        click.echo(f"note: no latent point found that decodes back to {text!r} exactly; using its posterior mean")
    return z


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("-n", "count", type=click.IntRange(1), default=16, show_default=True, help="how many")
@click.option("--seed", type=int, default=0, show_default=True, help="fixes the draws")
@render_options
def sample(run_dir: str, count: int, seed: int, out: str, **options: Any) -> None:
    """Decode draws z from the prior (N(0, I), or the run's fitted mixture), one after another."""
    from . import explore

    run = _load_run(run_dir)
    _render(run, explore.sample(run.model, count, seed), out, columns=count, **options)


@main.command()
@click.argument("run_dir", type=click.Path())
@click.argument("start")
@click.argument("end")
@click.option("--steps", type=click.IntRange(2), default=8, show_default=True,
              help="points from START to END inclusive")
@click.option("--slerp", is_flag=True, help="spherical instead of straight-line interpolation")
@key_option
@render_options
def interpolate(run_dir: str, start: str, end: str, steps: int, slerp: bool, key: str | None, out: str,
                **options: Any) -> None:
    """Walk from START to END: chords ("C E G", "0,4,7", "Cmaj7"), progressions ("C G Am F",
    "| C . G . |", "I V vi IV", "song.mid:9-12"), points of the pictures' plane
    ("xy:0.5,-1.2") or raw latent points ("z:0.5,-1.2,0.1,0"). Between two plane points the walk
    follows the plane, as the explorer page's walks do; otherwise it goes straight (or with
    --slerp, spherically) through the latent space."""
    from . import explore

    run = _load_run(run_dir)
    if not slerp and explore.is_plane_point(start) and explore.is_plane_point(end):
        z = run.latent_plane().to_latent(explore.interpolate(explore.plane_point(start), explore.plane_point(end), steps))
    else:
        z = explore.interpolate(_point(run, start, key), _point(run, end, key), steps, spherical=slerp)
    _render(run, z, out, columns=steps, **options)


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--grid", "n", type=click.IntRange(1), default=None,
              help="walk the n x n latent grid of latent_space.png row by row (default: the picture's, "
                   "12 for chords, 30 for images)")
@click.option("--scale", type=click.FloatRange(0, min_open=True), default=None,
              help="the grid covers [-scale, scale] in each direction of the picture's plane "
                   "(default: the picture's)")
@click.option("--z", "point", default=None,
              help="decode this one point instead: xy:0.5,-1.2 (the pictures' plane) or z:... "
                   "(raw latent coordinates, one per latent dimension)")
@render_options
def decode(run_dir: str, n: int | None, scale: float | None, point: str | None, out: str, **options: Any) -> None:
    """Decode the latent grid (the audible latent_space.png) or one point, from the checkpoint alone."""
    from . import explore

    run = _load_run(run_dir)
    if point is not None:
        _render(run, _point(run, point if explore.is_point(point) else f"z:{point}").unsqueeze(0), out,
                columns=1, **options)
    else:
        n = n or run.adapter.default_grid
        _render(run, explore.grid(run, n, scale), out, columns=n, **options)


@main.command()
@click.argument("run_dir", type=click.Path())
@click.argument("events", nargs=-1, required=True)
@key_option
@click.option("--picture", type=OUT_FILE, default=None,
              help="progressions: draw the path of the piece given (a music file) on the run's progression map (.png)")
@colour_option
@quiet_option
def encode(run_dir: str, events: tuple[str, ...], key: str | None, picture: str | None, colour_by: str | None,
           quiet: bool) -> None:
    """Print the posterior mean and standard deviation of each chord or progression given; for a
    progression run, a whole music file prints its path: a point for every window of the run's
    bars, one bar apart."""
    from . import explore

    run = _load_run(run_dir, progress=not quiet)
    plane = run.latent_plane()
    pieces = [text for text in events if _is_piece(run, text)]
    if picture and len(pieces) != 1:
        raise click.UsageError("--picture draws the path of one piece: give one music file (with a progression run)")
    for text in events:
        if text in pieces:
            _print_path(run, text, plane, picture, colour_by)
            continue
        mu, sigma = explore.encode(run.model, _event(run, text, key))
        xy = plane.project(mu)[0]
        click.echo(f"{text}: mean z:{_numbers(mu[0])}  std {_numbers(sigma[0])}  "
                   f"in the pictures' plane xy:{_numbers(xy)}")


def _is_piece(run, text: str) -> bool:
    """Whether ``text`` names a whole music file for a progression run (a path: a span has ``:BARS``)."""
    from .chords.sources import SUFFIXES

    return run.dataset == "progressions" and Path(text).suffix.lower() in SUFFIXES and Path(text).is_file()


def _print_path(run, path: str, plane, picture: str | None, colour_by: str | None) -> None:
    """One line per window of the piece at ``path``: its bars, plane point, latent mean and
    progression; with ``picture``, the path drawn on the run's progression map."""
    from .progressions.search import piece_path

    if colour_by is not None and colour_by not in run.adapter.colourings:
        raise click.UsageError(f"the progression map can be coloured by {', '.join(run.adapter.colourings)}")
    points = piece_path(run, path)
    xy = plane.project(points.means)
    for info, mu, p in zip(points.infos(), points.means, xy):
        click.echo(f"{path}:{info.bars}  xy:{_numbers(p)}  z:{_numbers(mu)}  {info.progression}")
    if picture:
        from .datasets.progressions import progression_map
        from .plots import save_figure

        save_figure(progression_map(run.model, run.data(), plane, colour_by or "corpus", path=points,
                                    path_name=Path(path).name), picture)
        click.echo(f"wrote {picture}")


@main.command()
@click.argument("run_dir", type=click.Path())
@click.argument("query")
@click.option("--in", "sources", multiple=True, required=True, metavar="SOURCE",
              help="the music to search (repeatable): files, folders, NAME=PATH, m21:COMPOSER")
@click.option("-n", "count", type=click.IntRange(1), default=10, show_default=True, help="how many windows")
@key_option
@click.option("--jobs", type=click.IntRange(1), default=None, help="parallel parsing processes (default: all cores)")
@click.option("--strict", is_flag=True, help="stop at the first unreadable file")
@click.option("--no-cache", is_flag=True, help="parse every file again")
@quiet_option
def similar(run_dir: str, query: str, sources: tuple[str, ...], count: int, key: str | None, jobs: int | None,
            strict: bool, no_cache: bool, quiet: bool) -> None:
    """List the windows of the music --in SOURCES nearest to the progression QUERY in a
    progression run's latent space ("C G Am F", "| C . G . |", "I V vi IV" --key D,
    "song.mid:9-12"): file:bars (a span you can type back), distance, the semitones the query was
    moved to match (a run trained on all transpositions finds it in any key) and the recognised
    progression."""
    from .progressions.search import similar as search

    run = _load_run(run_dir, progress=not quiet)
    if run.dataset != "progressions":
        raise click.UsageError(f"similar searches progression runs; {run_dir} is a {run.dataset} run")
    found = search(run, query, list(sources), count, key=key, progress=not quiet, jobs=jobs, strict=strict,
                   no_cache=no_cache)
    click.echo(f"{len(found.matches)} nearest of {found.searched} windows ({found.summary}); "
               "file:bars  distance  shift  progression")
    for match in found.matches:
        click.echo(match.line())


def _numbers(values) -> str:
    """``0.512,-1.200``: a point as ``z:`` and ``xy:`` read it back."""
    return ",".join(f"{v:.3f}" for v in values.tolist())


@main.command("explore")
@click.argument("run_dir", type=click.Path())
@click.option("--out", "-o", type=click.Path(), default=None,
              help="HTML file to write (default: explorer.html in the run directory)")
@click.option("--extent", type=click.FloatRange(0, min_open=True), default=None,
              help="show [-extent, extent] of each plane direction (default: fit the corpus's chords)")
@click.option("--grid", type=click.IntRange(16, 1024), default=256, show_default=True,
              help="chord runs: background cells per side (the chords on a grid twice as fine are named)")
@click.option("--open", "open_page", is_flag=True, help="open the page in the default browser")
@quiet_option
def explore_page(run_dir: str, out: str | None, extent: float | None, grid: int, open_page: bool,
                 quiet: bool) -> None:
    """Write one self-contained HTML page that shows and plays a chord or progression run's latent space."""
    import webbrowser

    from .render.explorer import ExplorerOptions, write_explorer

    path = write_explorer(_load_run(run_dir, progress=not quiet), out or Path(run_dir) / "explorer.html",
                          ExplorerOptions(grid=grid, extent=extent)).resolve()
    click.echo(f"open {path}")
    if open_page and not webbrowser.open(path.as_uri()):
        click.echo("no browser found; open the file above yourself")


@main.command()
@click.argument("sources", nargs=-1)
def corpora(sources: tuple[str, ...]) -> None:
    """List the built-in corpora (bundled samples, music21's composers) with their numbers of
    files, or show how SOURCES resolve into named corpora."""
    from .chords import sources as named

    if sources:
        for name, n in named.corpus_sizes(sources).items():
            click.echo(f"{name:24s} {n:6d} files")
        return
    click.echo("bundled samples (a folder's subfolders are corpora named after them):")
    for name, (folder, n) in named.bundled().items():
        click.echo(f"  {name:22s} {n:6d} files   {folder}")
    click.echo("music21's corpus by composer (give as m21:NAME):")
    for name, n in named.m21_composers().items():
        click.echo(f"  m21:{name:18s} {n:6d} files")


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--part", type=click.Choice(["validation", "train", "test"]), default="validation", show_default=True,
              help="which part of the run's data to score (test: sets with a canonical test split, e.g. jsb-chorales)")
@click.option("--iw-samples", "k", type=click.IntRange(1), default=None,
              help="importance samples for the IWAE bound (default 1000 for chords, 100 for images)")
@click.option("--seed", type=int, default=0, show_default=True, help="fixes the importance samples")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--on", "on", multiple=True, metavar="SOURCE",
              help="score this source instead (repeatable; e.g. another corpus: m21:palestrina, pop=data/midi/pop): "
                   "only its pieces the run has not trained or validated on")
@click.option("--include-seen", is_flag=True,
              help="with --on: also score the pieces the run trained or validated on")
@quiet_option
def evaluate(run_dir: str, part: str, k: int | None, seed: int, as_json: bool, on: tuple[str, ...],
             include_seen: bool, quiet: bool) -> None:
    """Likelihood bounds, latent diagnostics and baselines for a run (also written to the run directory)."""
    import json

    from . import runs
    from .evaluate import format_report
    from .threads import use_idle_cores

    if include_seen and not on:
        raise click.UsageError("--include-seen applies to --on SOURCE only")
    use_idle_cores()
    runs.evaluate_run(run_dir, part, k, seed, progress=not quiet, on=on, include_seen=include_seen,
                      show=lambda report: click.echo(json.dumps(report, indent=2) if as_json
                                                     else format_report(report)))


def _counts(text: str) -> tuple[int, ...]:
    """``5,10,20,all`` -> ``(5, 10, 20, 0)`` (0: every training piece)."""
    values = [v.strip() for v in text.split(",")]
    if not all(v == "all" or (v.isdigit() and int(v) >= 1) for v in values):
        raise click.BadParameter(f"expected piece counts of at least 1 or all, e.g. 5,10,20,all; got {text!r}")
    return tuple(0 if v == "all" else int(v) for v in values)


@main.command()
@click.option("--dataset", "-d", required=True, help="a dataset made of pieces: chords or progressions")
@click.argument("paths", nargs=-1)
@click.option("--bars", type=click.IntRange(1), default=None, help="progressions: bars per window (default 4)")
@click.option("--pieces", required=True, help="training-set sizes in pieces, e.g. 5,10,20,50,all")
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True,
              help="models per size, each on its own draw of training pieces")
@click.option("--held-out", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.1,
              show_default=True, help="fraction of the pieces held out for scoring (the same throughout)")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="at least this many optimiser updates per model, however small its data (default: "
                   "the dataset's minimum, at least 2,000: progressions 8,000)")
@click.option("--epochs", type=click.IntRange(1), default=30, show_default=True,
              help="at least this many passes over each model's training data")
@click.option("--iw-samples", type=click.IntRange(1), default=1000, show_default=True,
              help="importance samples for the held-out IWAE bound")
@chord_options
@vector_options
@click.option("--latent-dim", type=click.IntRange(1), default=None, help="latent size (default: the dataset's, chords 4)")
@click.option("--hidden", default=None, help="mlp hidden sizes, e.g. 256,128 (progressions: the encoder and "
                                             "decoder GRUs, e.g. 64,128; default: the dataset's)")
@click.option("--beta", type=click.FloatRange(0), default=None, help="KL weight (default: the dataset's, chords 0.5)")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="examples per Adam step (default: the dataset's)")
@click.option("--lr", "learning_rate", type=click.FloatRange(0, min_open=True), default=None,
              help="Adam learning rate (default: the dataset's)")
@click.option("--seed", type=int, default=0, show_default=True,
              help="fixes the held-out pieces, each repeat's draws and the initialisations")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="folder for curve.json and curve.png (default runs/curve-<date>-<time>)")
@quiet_option
def curve(dataset: str, paths: tuple[str, ...], bars: int | None, pieces: str, repeats: int, held_out: float,
          steps: int | None, epochs: int, iw_samples: int, latent_dim: int | None, hidden: str | None, beta: float | None,
          batch_size: int | None, learning_rate: float | None, seed: int, threads: int | None, out: str | None,
          quiet: bool, **kw: Any) -> None:
    """Learning curve: train on growing numbers of pieces of PATHS, score the same held-out pieces."""
    from .curve import CurveConfig, run_curve, within_message
    from .runs import new_run_dir, training_config

    config = CurveConfig(_counts(pieces), repeats, held_out, steps, epochs, iw_samples, seed)
    config.validate()
    if dataset == "progressions":
        from .chords.options import ChordOptions

        misplaced = _given(tuple(n for n in ChordOptions.names() if n not in PROGRESSION_CHORD_OPTIONS))
        if misplaced:
            raise click.UsageError(f"{', '.join(misplaced)} do not apply to --dataset progressions")
    chords = _chord_opts(kw)
    options = _progression_options(chords, bars) if dataset == "progressions" else chords
    if bars is not None and dataset != "progressions":
        raise click.UsageError(f"--bars does not apply to --dataset {dataset}")
    out = out or str(new_run_dir("curve"))
    given = {"batch_size": batch_size, "learning_rate": learning_rate, "beta": beta}
    result = run_curve(dataset, paths, options, config,
                       training_config(dataset, seed=seed, threads=threads,
                                       **{k: v for k, v in given.items() if v is not None}),
                       out, latent_dim=latent_dim, hidden=_ints(hidden), progress=not quiet)
    unit = "frames" if dataset == "progressions" else "chords"
    click.echo(f"{'pieces':>8s} {unit:>8s} {'VAE NLL':>9s} " + " ".join(f"{b:>22s}" for b in result["baselines"]))
    for s in result["summary"]:
        click.echo(f"{s['pieces']:8d} {s['chords']['mean']:8.0f} {s['nll']['mean']:9.3f} "
                   + " ".join(f"{s[b]['mean']:22.3f}" for b in result["baselines"]))
    click.echo(within_message(result))
    click.echo(f"wrote {Path(out) / 'curve.json'} and {Path(out) / 'curve.png'}")
