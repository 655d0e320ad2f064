"""The app as a screen sees it. Screens navigate through ``ClinsimApp``'s methods
(``open_review``, ``open_dashboard``, ``open_episode``, ``open_fork``, ...) instead of importing
each other; ``app_of`` gives them the app with that type. ``tui.app`` imports the screens, so
this module imports it for type checking only."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.dom import DOMNode

if TYPE_CHECKING:
    from tui.app import ClinsimApp


def app_of(node: DOMNode) -> ClinsimApp:
    """``node.app``, typed as the ``ClinsimApp`` it always is."""
    return cast("ClinsimApp", node.app)
