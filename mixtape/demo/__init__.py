"""The demo: generate the embedded collection, build it, train briefly, print what happened."""
