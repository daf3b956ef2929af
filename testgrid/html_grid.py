"""The grid as one static HTML page: TestGrid's colours, a column per build, a row per test."""

from __future__ import annotations

from html import escape

from testgrid.grid import OVERALL_ROW, Cell, Grid, Status
from testgrid.text_grid import OVERALL_WORDS, started_text

CSS_CLASSES = {Status.PASS: "pass", Status.FAIL: "fail", Status.FLAKY: "flaky", Status.SKIP: "skip",
               Status.RUNNING: "running", Status.MALFORMED: "malformed", Status.NONE: "none"}
# As on TestGrid: a passing or empty cell is its colour alone.
BLANK_GLYPHS = (Status.PASS, Status.NONE)
STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table.grid { border-collapse: collapse; }
table.grid th, table.grid td { border: 1px solid #fff; padding: 2px 4px; white-space: nowrap; }
table.grid th.name { text-align: left; font-weight: normal; position: sticky; left: 0; background: #fff; }
table.grid thead td { background: #eee; font-size: 11px; text-align: center; }
table.grid tbody td { min-width: 1.5em; text-align: center; font-weight: bold; }
tr.overall th.name { font-weight: bold; }
.pass { background: #4d7; } .fail { background: #e56; } .flaky { background: #a7c; }
.skip { background: #bea; } .running { background: #9be; } .malformed { background: #e56; }
.none { background: #f4f4f4; }
.legend span { display: inline-block; padding: 2px 6px; margin-right: 4px; }
"""


def render_html(grid: Grid) -> str:
    job = escape(grid.job)
    suite = f" Suite: <code>{escape(grid.suite)}</code>." if grid.suite else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{job} - TestGrid view</title><style>{STYLE}</style></head><body>",
        f"<h1>{job}</h1>",
        f"<p>{len(grid.columns)} of {grid.total_builds} builds, newest first, from <code>{escape(grid.source)}</code>."
        f"{suite} {len(grid.rows)} tests{_hidden(grid)}.</p>",
        '<table class="grid"><thead>',
        *_header_rows(grid),
        "</thead><tbody>",
        _row_html(OVERALL_ROW, [column.overall for column in grid.columns], "overall"),
        *(_row_html(row.label, row.cells, "", row.name) for row in grid.rows),
        "</tbody></table>",
        '<p class="legend">' + "".join(
            f'<span class="{CSS_CLASSES[status]}">{_glyph(status)} {escape(status.meaning)}</span>'
            for status in Status) + "</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _hidden(grid: Grid) -> str:
    return f" ({grid.hidden_rows} more left out by the filters)" if grid.hidden_rows else ""


def _header_rows(grid: Grid) -> list[str]:
    keys = list(dict.fromkeys(key for column in grid.columns for key in column.metadata))
    lines = [
        _header_row("build", [column.build for column in grid.columns]),
        _header_row("started (UTC)", [started_text(column.started) for column in grid.columns]),
        _header_row("result", [OVERALL_WORDS[column.overall.status] for column in grid.columns]),
    ]
    lines += [_header_row(key, [column.metadata.get(key, "") for column in grid.columns]) for key in keys]
    return lines


def _header_row(title: str, values: list[str]) -> str:
    cells = "".join(f"<td>{escape(value)}</td>" for value in values)
    return f'<tr><th class="name">{escape(title)}</th>{cells}</tr>'


def _row_html(label: str, cells: list[Cell], row_class: str, full_name: str = "") -> str:
    title = f' title="{escape(full_name)}"' if full_name and full_name != label else ""
    css = f' class="{row_class}"' if row_class else ""
    return f'<tr{css}><th class="name"{title}>{escape(label)}</th>{"".join(_cell_html(cell) for cell in cells)}</tr>'


def _cell_html(cell: Cell) -> str:
    title = f' title="{escape(cell.message)}"' if cell.message else ""
    return f'<td class="{CSS_CLASSES[cell.status]}"{title}>{_glyph(cell.status)}</td>'


def _glyph(status: Status) -> str:
    return "" if status in BLANK_GLYPHS else escape(status.glyph)
