"""Charts drawn on the server as SVG (no script, nothing for the CSP to allow): the geometry of a bar chart,
which a template turns into `<rect>`s, with the same figures in a table beside it."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

WIDTH = 600
HEIGHT = 160
AXIS = 20  # room under the bars for the first and last day


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True)
class BarChart:
    title: str
    bars: list[Bar]
    peak: int
    first_label: str
    last_label: str
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def baseline(self) -> int:
        return self.height - AXIS


def bar_chart(title: str, series: list[tuple[datetime.date, int]]) -> BarChart:
    """Bars for (day, count) pairs, scaled to the largest count (at least 1, so an empty month is flat)."""
    peak = max((count for _, count in series), default=0)
    scale = (HEIGHT - AXIS - 10) / max(peak, 1)
    slot = WIDTH / max(len(series), 1)
    bars = [
        Bar(
            x=round(index * slot + slot * 0.1, 1),
            y=round(HEIGHT - AXIS - count * scale, 1),
            width=round(slot * 0.8, 1),
            height=round(count * scale, 1),
            label=f"{day:%-d %b}: {count}",
            value=count,
        )
        for index, (day, count) in enumerate(series)
    ]
    return BarChart(
        title=title,
        bars=bars,
        peak=peak,
        first_label=f"{series[0][0]:%-d %b}" if series else "",
        last_label=f"{series[-1][0]:%-d %b}" if series else "",
    )
