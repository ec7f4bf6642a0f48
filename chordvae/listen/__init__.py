"""Listening: chords typed by a user in, voiced chords out as MIDI, MusicXML and audio."""
