"""Widgets of the gdchaos TUI."""
