"""HTML (Jinja2, autoescaped, inline CSS, images as data URIs) and Markdown renderings of a report."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1180px;
color:#222;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #e0e0e0;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.05rem;margin:1.4rem 0 .4rem}.meta{color:#666;font-size:.9rem}
table{border-collapse:collapse;margin:.4rem 0 .3rem;font-size:.9rem}
th,td{border:1px solid #d6d6d6;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f5f9}tr:nth-child(even) td{background:#fafafa}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.note{color:#555;font-size:.85rem;margin:.2rem 0 1rem}
figure{margin:1.2rem 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.88rem;color:#444}pre{background:#f6f8fa;padding:.7rem;overflow:auto;font-size:.8rem}
details{margin:.4rem 0}summary{cursor:pointer;font-weight:600}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ meta.title }}</title><style>{{ css }}</style></head>
<body>
<h1>{{ meta.title }}</h1>
<p class="meta">{{ meta.n_runs }} run(s) in {{ meta.n_groups }} group(s) · generated {{ meta.generated }}</p>
{% for s in sections %}
<h2>{{ s.title }}</h2>
{% if s.note %}<p class="note">{{ s.note }}</p>{% endif %}
{% for t in s.tables %}
<h3>{{ t.title }}</h3>
<table><thead><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in t.rows %}<tr>{% for v in row %}<td{% if numeric(v) %} class="num"{% endif %}>{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>
{% if t.note %}<p class="note">{{ t.note }}</p>{% endif %}
{% endfor %}
{% for f in s.figures %}
<figure><img src="{{ f.data_uri }}" alt="{{ f.title }}"><figcaption><b>{{ f.title }}.</b> {{ f.caption }}</figcaption></figure>
{% endfor %}
{% endfor %}
<h2>Configurations</h2>
{% for label, paths, cfg in configs %}
<details><summary>{{ label }} — {{ paths|length }} run(s)</summary>
<p class="note">{% for p in paths %}{{ p }}<br>{% endfor %}</p><pre>{{ cfg }}</pre></details>
{% endfor %}
</body></html>
"""


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Figure:
    title: str
    caption: str
    file: str  # PNG file name (Markdown version)
    data_uri: str  # data:image/png;base64,... (HTML version)


@dataclass
class Section:
    title: str
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    note: str = ""


_NUMERIC = re.compile(r"^[-+]?[\d,]*\.?\d+%?( ± [\d.]+%?)?$")


def _numeric(v: Any) -> bool:
    """Right-align numbers, percentages and ``mean ± std`` cells."""
    return bool(_NUMERIC.match(str(v)))


def render_html(meta: dict[str, Any], sections: list[Section], configs: list[tuple[str, list[str], str]]) -> str:
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(_TEMPLATE).render(meta=meta, sections=sections, configs=configs, css=_CSS,
                                             numeric=_numeric)


def _md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def render_markdown(meta: dict[str, Any], sections: list[Section], configs: list[tuple[str, list[str], str]],
                    files_dir: str) -> str:
    out = [f"# {meta['title']}", "", f"{meta['n_runs']} run(s) in {meta['n_groups']} group(s) · "
           f"generated {meta['generated']}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.note:
            out += [s.note, ""]
        for t in s.tables:
            out += [f"### {t.title}", "", "| " + " | ".join(map(_md_cell, t.columns)) + " |",
                    "|" + "---|" * len(t.columns)]
            out += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in t.rows]
            out += ["", t.note, ""] if t.note else [""]
        for f in s.figures:
            out += [f"![{f.title}]({files_dir}/{f.file})", "", f"*{f.title}.* {f.caption}", ""]
    out += ["## Configurations", ""]
    for label, paths, cfg in configs:
        out += [f"### {label}", "", *(f"- `{p}`" for p in paths), "", "```json", cfg, "```", ""]
    return "\n".join(out)
