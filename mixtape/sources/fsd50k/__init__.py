"""FSD50K: the release's reader, and the unpacking of its split zip archives."""
