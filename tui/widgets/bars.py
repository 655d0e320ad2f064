"""Horizontal bar charts drawn with text, for scores in [0, 1] with their CI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text


def bar_chart(title: str, groups: Mapping[str, Mapping[str, Any]], *, width: int = 8) -> Text:
    """One line per group: label, a bar of the mean, the mean and its 95% CI (fits 38
    columns); the title gives the largest n.

    ``groups`` maps a label to ``{"mean", "low", "high", "n"}`` (the report's estimates)."""
    text = Text()
    n = max((int(e.get("n") or 0) for e in groups.values()), default=0)
    text.append(f"{title} (mean, 95% CI; n≤{n})\n" if groups else f"{title}\n", style="bold")
    if not groups:
        text.append("no scored episodes yet\n", style="dim")
        return text
    label_w = min(12, max(len(k) for k in groups))
    for label, est in groups.items():
        mean = est.get("mean")
        text.append(f"{label[:label_w]:<{label_w}} ")
        if mean is None:
            text.append("·" * width + "   —\n", style="dim")
            continue
        filled = round(max(0.0, min(1.0, mean)) * width)
        text.append("█" * filled, style="green" if mean >= 0.5 else "yellow")
        text.append("░" * (width - filled), style="dim")
        low, high = est.get("low"), est.get("high")
        ci = f" [{low:.2f}-{high:.2f}]" if low is not None and high is not None else ""
        text.append(f" {mean:.2f}{ci}\n")
    return text
