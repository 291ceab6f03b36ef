"""The privacy API: data-subject requests."""
