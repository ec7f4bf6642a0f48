"""Pictures of a trained run, one module per kind of event (``chords``; later ``progressions``)."""
