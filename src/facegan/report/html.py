"""The report page: a `Page` of sections, figures and tables rendered as one self-contained HTML file.

The page has inline CSS, no scripts and no external resources; images are referenced by file names in the
same folder, so the folder opens from disk (file://) in any browser, with no server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from facegan.utils.atomic import atomic_write_bytes
from facegan.utils.text import is_number

GENERATOR_TAG = "facegan-report"  # <meta name="generator">: marks a folder build_report may replace


@dataclass
class Picture:
    """An image file beside the page; `scale` enlarges small pixel art (faces) without smoothing."""

    file: str
    caption: str
    width: int
    height: int
    scale: int = 1
    pixelated: bool = False
    link: str | None = None  # e.g. the MP4 version of a GIF


@dataclass
class Table:
    """A simple table of already-formatted cells."""

    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    align_numbers: bool = False  # right-align cells that parse as numbers (columns of measurements)


@dataclass
class Section:
    """A titled part of the page."""

    key: str
    title: str
    intro: str = ""
    notes: list[str] = field(default_factory=list)
    pictures: list[Picture] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Page:
    """The whole report."""

    title: str
    subtitle: str
    facts: list[tuple[str, str]]
    notes: list[str]
    sections: list[Section]
    footer: str = ""


CSS = """
:root { color-scheme: light; --ink: #1d2329; --muted: #5b6672; --line: #d8dee4; --bg: #f6f8fa; --warn: #fff4d6;
        --warn-line: #e0b400; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); background: #fff; }
header { padding: 20px 28px 12px; border-bottom: 1px solid var(--line); background: var(--bg); }
header h1 { margin: 0 0 2px; font-size: 26px; }
header p { margin: 0; color: var(--muted); }
nav { position: sticky; top: 0; z-index: 1; background: #fff; border-bottom: 1px solid var(--line);
      padding: 8px 28px; font-size: 15px; }
nav a { margin-right: 16px; color: #0b5cad; text-decoration: none; }
nav a:hover { text-decoration: underline; }
main { padding: 8px 28px 40px; max-width: 1840px; }
section { margin-top: 28px; }
h2 { font-size: 21px; border-bottom: 1px solid var(--line); padding-bottom: 4px; margin: 0 0 10px; }
.intro { color: var(--muted); margin: 0 0 12px; max-width: 70em; }
.facts { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 14px; }
.fact { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; }
.fact b { display: block; font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase;
          letter-spacing: .04em; }
.fact span { font-size: 17px; }
.note { background: var(--warn); border-left: 4px solid var(--warn-line); padding: 8px 12px; margin: 8px 0;
        max-width: 70em; }
.pictures { display: flex; flex-wrap: wrap; gap: 22px; align-items: flex-start; }
figure { margin: 0; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
img.pixelated { image-rendering: pixelated; }
figcaption { color: var(--muted); font-size: 14.5px; margin-top: 4px; max-width: 62em; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 15px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top;
         max-width: 30em; overflow-wrap: anywhere; }
th { background: var(--bg); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.tables { display: flex; flex-wrap: wrap; gap: 26px; align-items: flex-start; }
footer { color: var(--muted); font-size: 13px; padding: 16px 28px; border-top: 1px solid var(--line); }
"""



def _picture(p: Picture) -> str:
    classes = ' class="pixelated"' if p.pixelated else ""
    img = (f'<img src="{escape(p.file)}" alt="{escape(p.caption)}" width="{p.width * p.scale}" '
           f'height="{p.height * p.scale}"{classes}>')
    link = f' <a href="{escape(p.link)}">({escape(Path(p.link).suffix[1:].upper())})</a>' if p.link else ""
    return f"<figure>{img}<figcaption>{escape(p.caption)}{link}</figcaption></figure>"


def _table(t: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in t.headers)
    body = []
    for row in t.rows:
        cells = "".join(f'<td class="num">{escape(c)}</td>' if t.align_numbers and is_number(c)
                        else f"<td>{escape(c)}</td>" for c in row)
        body.append(f"<tr>{cells}</tr>")
    caption = f"<caption>{escape(t.caption)}</caption>" if t.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _section(s: Section) -> str:
    parts = [f'<section id="{escape(s.key)}"><h2>{escape(s.title)}</h2>']
    if s.intro:
        parts.append(f'<p class="intro">{escape(s.intro)}</p>')
    parts += [f'<p class="note">{escape(n)}</p>' for n in s.notes]
    if s.pictures:
        parts.append('<div class="pictures">' + "".join(_picture(p) for p in s.pictures) + "</div>")
    if s.tables:
        parts.append('<div class="tables">' + "".join(_table(t) for t in s.tables) + "</div>")
    parts.append("</section>")
    return "".join(parts)


def render(page: Page) -> str:
    """The page as an HTML document (UTF-8, inline CSS, relative image links only)."""
    facts = "".join(f'<div class="fact"><b>{escape(k)}</b><span>{escape(v)}</span></div>' for k, v in page.facts)
    nav = "".join(f'<a href="#{escape(s.key)}">{escape(s.title)}</a>' for s in page.sections)
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in page.notes)
    body = "\n".join(_section(s) for s in page.sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta name="generator" content="{GENERATOR_TAG}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(page.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(page.title)}</h1><p>{escape(page.subtitle)}</p>"
        f'<div class="facts">{facts}</div></header>\n'
        f"<nav>{nav}</nav>\n<main>{notes}\n{body}\n</main>\n"
        f"<footer>{escape(page.footer)}</footer>\n</body>\n</html>\n"
    )


def write_page(page: Page, path: str | Path) -> Path:
    """Render `page` to `path` atomically."""
    path = Path(path)
    atomic_write_bytes(path, render(page).encode("utf-8"))
    return path
