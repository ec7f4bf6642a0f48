"""Chord progressions: recognised chords as beat frames, windows of bars, typed progressions."""
