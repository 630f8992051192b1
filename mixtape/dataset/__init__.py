"""The output contract: a dataset folder's file names, its card, and what in the folder is mixtape's."""
