"""Streaming PyTorch training on mixtape shards: data stream, front-ends, models, loop, metrics."""
