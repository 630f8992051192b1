"""mixtape: reproducible, augmented music-ML training sets from open audio collections."""

__version__ = "0.1.0"
