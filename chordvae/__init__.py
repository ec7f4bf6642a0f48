"""chordvae: a variational autoencoder toolkit for a latent space of musical chords."""

__version__ = "0.2.0"
