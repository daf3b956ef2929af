"""The grid in a terminal: a table of the builds shown, then one line per test with a glyph per build."""

from __future__ import annotations

import datetime

import click
from tabulate import tabulate

from testgrid.grid import OVERALL_ROW, Cell, Column, Grid, Status

# Colours are dropped by click.echo when the output is not a terminal.
COLORS = {Status.PASS: "green", Status.FAIL: "red", Status.FLAKY: "magenta", Status.SKIP: "yellow",
          Status.RUNNING: "blue", Status.MALFORMED: "red", Status.NONE: None}
OVERALL_WORDS = {Status.PASS: "passed", Status.FAIL: "failed", Status.RUNNING: "running",
                 Status.MALFORMED: "malformed"}


def started_text(started: int | None) -> str:
    if started is None:
        return "-"
    return datetime.datetime.fromtimestamp(started, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def metadata_text(metadata: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in metadata.items())


def render_text(grid: Grid) -> str:
    lines = [f"{grid.job}: {len(grid.columns)} of {grid.total_builds} builds, newest first ({grid.source})"]
    lines += tabulate([_build_line(number, column) for number, column in enumerate(grid.columns, start=1)],
                      headers=["#", "build", "started (UTC)", "result", "metadata"],
                      tablefmt="plain", disable_numparse=True).splitlines()
    if grid.suite:
        lines.append(f"suite: {grid.suite}")
    width = len(str(len(grid.columns)))
    lines += ["", " ".join(str(number).rjust(width) for number in range(1, len(grid.columns) + 1))]
    lines.append(_grid_line([column.overall for column in grid.columns], OVERALL_ROW, width))
    lines += [_grid_line(row.cells, row.label, width) for row in grid.rows]
    lines += ["", _count_line(grid), "  ".join(f"{status.glyph} {status.meaning}" for status in Status)]
    return "\n".join(lines)


def _build_line(number: int, column: Column) -> list[str]:
    result = OVERALL_WORDS[column.overall.status]
    if column.overall.message:
        result += f": {column.overall.message}"
    return [str(number), column.build, started_text(column.started), result, metadata_text(column.metadata)]


def _grid_line(cells: list[Cell], label: str, width: int) -> str:
    glyphs = " ".join(click.style(cell.status.glyph.rjust(width), fg=COLORS[cell.status]) for cell in cells)
    return f"{glyphs}  {label}"


def _count_line(grid: Grid) -> str:
    text = f"{len(grid.rows)} tests"
    if grid.hidden_rows:
        text += f" ({grid.hidden_rows} more left out by --include/--exclude)"
    return text
