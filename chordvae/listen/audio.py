"""Audio: MIDI rendered through FluidSynth with a General MIDI SoundFont."""
from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

from .._pretty_midi import pretty_midi
from ..errors import ChordVAEError
from ..fileio import atomic_path

#: Where Debian and other systems put General MIDI SoundFonts.
SOUNDFONT_PLACES = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
                    "/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/soundfonts/default.sf2",
                    "/usr/share/soundfonts/FluidR3_GM.sf2", "/usr/share/sounds/sf3/default-GM.sf3")
BUNDLED = str(Path(pretty_midi.__file__).parent / "TimGM6mb.sf2")
INSTALL_HINT = "install one, e.g. `apt-get install fluid-soundfont-gm` (or timgm6mb-soundfont), or pass --soundfont"


def find_soundfont(explicit: str | None = None) -> Path:
    """``explicit``, else ``$CHORDVAE_SOUNDFONT``, else the first of SOUNDFONT_PLACES that
    exists, else the small TimGM6mb SoundFont that pretty_midi ships."""
    for candidate in (explicit, os.environ.get("CHORDVAE_SOUNDFONT")):
        if candidate:
            if not Path(candidate).is_file():
                raise ChordVAEError(f"SoundFont {candidate} not found")
            return Path(candidate)
    for place in (*SOUNDFONT_PLACES, BUNDLED):
        if Path(place).is_file():
            return Path(place)
    raise ChordVAEError(f"no General MIDI SoundFont found: {INSTALL_HINT}")


def render_wav(midi: pretty_midi.PrettyMIDI, path: str | Path, soundfont: str | None = None,
               sample_rate: int = 44100) -> Path:
    """Synthesize ``midi`` with FluidSynth (via pretty_midi) into a 16-bit mono WAV, peak-normalised."""
    sf2 = find_soundfont(soundfont)
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; pretty_midi uses it)
    except (ImportError, OSError) as e:
        raise ChordVAEError(f"FluidSynth is not available ({e}): `apt-get install fluidsynth` and "
                            f"`pip install pyfluidsynth`") from None
    audio = midi.fluidsynth(fs=sample_rate, synthesizer=str(sf2))
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    samples = (audio / peak * 0.9 if peak > 0 else audio) * 32767
    path = Path(path)
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path
