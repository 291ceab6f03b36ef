"""Data-subject requests: find, export, erase and suppress one person's events, with proof."""
