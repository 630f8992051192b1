"""Freesound API v2: a client (auth from the environment, rate budget, retries, resumable downloads) and a
downloader that writes the local dump layout ``kind: freesound_dump`` reads."""
