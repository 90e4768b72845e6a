"""Writing a report as JSON (for machines) and as one self-contained HTML file (for people).

Both come from the same report dict, so they cannot disagree: every number the HTML shows is
rendered by :func:`number_cell` from a JSON pointer into that dict and carries the pointer in
``data-json`` (and its format in ``data-format``), which is how the tests check that the page and
the JSON say the same thing. Plots are PNGs embedded as ``data:`` URIs: the file opens offline,
with no script, stylesheet or image fetched from anywhere.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from fakescope.jsonable import to_jsonable
from fakescope.reports.plots import PLOTS, available_plots, data_uri, render_plots

TEMPLATE = "report.html.j2"
MISSING = "\u2013"  # an en dash where a value is missing


def finalise(report: dict[str, Any], artifacts: dict[str, Any]) -> dict[str, Any]:
    """The report in plain JSON types, listing the plots its HTML embeds."""
    report = dict(report)
    report["plots"] = [
        {"id": spec.id, "title": spec.title, "section": spec.section}
        for spec in available_plots(report, artifacts)
    ]
    return to_jsonable(report)


def write_json(report: dict[str, Any], path: Path | None = None) -> str:
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return text


# ------------------------------------------------------------------ HTML


def escape_pointer_part(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def pointer(*parts: Any) -> str:
    """A JSON pointer (RFC 6901) from path parts."""
    return "".join("/" + escape_pointer_part(part) for part in parts)


def resolve(document: Any, json_pointer: str) -> Any:
    """The value at ``json_pointer``; KeyError/IndexError when it does not exist."""
    node = document
    if not json_pointer:
        return node
    for raw in json_pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def format_number(value: Any, style: str) -> str:
    """How the HTML prints a value: ``f3`` (3 decimals), ``pct1`` (percent, 1 decimal), ``int``,
    ``s1`` (seconds, 1 decimal); None prints as an en dash."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if style == "int":
        return str(int(value))
    if style.startswith("pct"):
        return f"{100 * float(value):.{int(style[3:])}f} %"
    if style.startswith("s"):
        return f"{float(value):.{int(style[1:])}f} s"
    return f"{float(value):.{int(style[1:])}f}"


def make_environment(report: dict[str, Any]) -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
    from markupsafe import Markup, escape

    templates = Path(str(files("fakescope.reports") / "templates"))
    environment = Environment(
        loader=FileSystemLoader(templates),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def number_cell(json_pointer: str, style: str = "f3") -> Markup:
        try:
            value = resolve(report, json_pointer)
        except (KeyError, IndexError, TypeError):  # not measured: no pointer to a number
            return Markup(f'<span class="missing">{MISSING}</span>')
        text = format_number(value, style)
        return Markup(
            f'<span class="num" data-json="{escape(json_pointer)}" '
            f'data-format="{escape(style)}">{escape(text)}</span>'
        )

    def interval(json_pointer: str, style: str = "f3") -> Markup:
        try:
            value = resolve(report, json_pointer)
        except (KeyError, IndexError, TypeError):
            value = None
        if not value:
            return Markup(f'<span class="ci">{MISSING}</span>')
        low = number_cell(json_pointer + "/0", style)
        high = number_cell(json_pointer + "/1", style)
        return Markup(f'<span class="ci">[{low}, {high}]</span>')

    environment.globals.update(num=number_cell, ci=interval, ptr=pointer, lookup=resolve)
    return environment


def render_html(report: dict[str, Any], plots: dict[str, bytes]) -> str:
    """The report page; ``report`` must be :func:`finalise`-d (its ``plots`` list is used)."""
    environment = make_environment(report)
    titles = {spec.id: spec.title for spec in PLOTS}
    images = {
        entry["id"]: {
            "title": titles.get(entry["id"], entry["id"]),
            "src": data_uri(plots[entry["id"]]),
        }
        for entry in report["plots"]
        if entry["id"] in plots
    }
    return environment.get_template(TEMPLATE).render(report=report, images=images)


def write_html(report: dict[str, Any], artifacts: dict[str, Any], path: Path) -> dict[str, bytes]:
    """Renders every plot and writes the page; returns the PNGs by plot id."""
    plots = render_plots(report, artifacts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, plots), encoding="utf-8")
    return plots
