"""The core stands alone: it imports no plotting, music or dataset code (checked in a fresh process)."""
from __future__ import annotations

import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    """Every module loaded by a fresh Python running ``statement``."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_core_imports_no_pictures_music_or_datasets():
    loaded = _modules_after("import chordvae.train, chordvae.vae, chordvae.checkpoint, chordvae.evaluate, "
                            "chordvae.baselines, chordvae.frame_vae, chordvae.stopping, chordvae.plane, "
                            "chordvae.batch, chordvae.meta, chordvae.config, chordvae.priors, chordvae.sequence, "
                            "chordvae.stepwise")
    assert "chordvae.vae" in loaded                      # the probe itself works
    assert {m.split(".")[0] for m in loaded} & {"matplotlib", "music21", "pretty_midi"} == set()
    assert not {m for m in loaded if m.startswith(("chordvae.chords", "chordvae.datasets", "chordvae.plots"))}


def test_the_dataset_interface_does_not_import_the_training_loop():
    loaded = _modules_after("import chordvae.datasets.base")
    assert "chordvae.datasets.base" in loaded and "chordvae.train" not in loaded
