"""Screens of the gdchaos TUI: setup, live, results, and the small dialogs."""
