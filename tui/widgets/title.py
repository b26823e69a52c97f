"""Textual's Header, safe to quit at once: its title update finds no title widget when the screen is
torn down right after it was mounted (a file opened and q pressed at once), and raised then."""
from __future__ import annotations

from textual.css.query import NoMatches
from textual.dom import NoScreen
from textual.events import Mount
from textual.widgets import Header


class TitleBar(Header):
    """A Header whose title updates do nothing once its parts are gone."""

    def _on_mount(self, event: Mount) -> None:
        event.prevent_default()  # Header's own handler would raise NoMatches in that case

        async def set_title() -> None:
            try:
                self.query_one("HeaderTitle").update(self.format_title())
            except (NoMatches, NoScreen):
                pass

        for owner in (self.app, self.screen):
            self.watch(owner, "title", set_title)
            self.watch(owner, "sub_title", set_title)
