"""AcousticBrainz: its low/high-level documents read as labels, and the reader that joins them to audio."""
