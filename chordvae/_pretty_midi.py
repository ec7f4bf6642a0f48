"""pretty_midi, imported so that nothing it prints lands in a command's standard output.

pretty_midi imports pyfluidsynth, which prints where it found libfluidsynth whenever the
environment variable ``CI`` is set; that line would corrupt ``chordvae evaluate --json`` and
anything else a user pipes. The print is sent to standard error instead.
"""
import contextlib
import sys

with contextlib.redirect_stdout(sys.stderr):
    import pretty_midi

__all__ = ["pretty_midi"]
