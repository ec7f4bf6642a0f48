"""Pages that show a trained run: the chord explorer (``chordvae explore``)."""
