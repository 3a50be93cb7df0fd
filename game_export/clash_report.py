"""The style-clash report as files: one labelled contact sheet per style, a self-contained HTML page
and the JSON it is rendered from.

Input is the plain report document (see lorastrap.clash.report.build_report) whose cells name
their PNGs relative to the output folder. The HTML embeds every cell as a data URI thumbnail (so
the page works when mailed or moved) and links each to its full-size PNG; the sheets are
referenced as relative files next to the page. pillow + stdlib only.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from game_export.contact_sheet import SheetCell, make_contact_sheet, save_contact_sheet
from lorastrap.kernel.atomic import atomic_write_text
from lorastrap.kernel.pngmeta import png_bytes

THUMB = 160
SHEET_MIN_CELL = 112  # room for the "id0.98 st0.41" label under small (64 px) cells

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 6px;vertical-align:top}
th{background:#eee;text-align:left}.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:0;display:inline-block;text-align:center}figure img{width:96px;height:96px;object-fit:contain;
image-rendering:pixelated;background:#fff;border:1px solid #ccc}figcaption{font-size:11px;color:#555}
.warn{background:#fff3cd;border:1px solid #e0c36c;padding:8px;margin:8px 0}.ok{color:#176c2e}.bad{color:#a01818}
code,pre{background:#f0f0f0;padding:2px 4px;font-size:12px;white-space:pre-wrap;word-break:break-all}
.flag{color:#a01818;font-weight:bold}.sheet{max-width:100%;border:1px solid #ccc}
"""


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path
    sheets: dict[str, Path]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: object, digits: int = 2) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def _data_uri(path: Path, size: int = THUMB) -> str:
    with Image.open(path) as im:
        im = im.convert("RGBA")
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
        data = png_bytes(im, optimize=True)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "style"


def write_style_sheets(report: Mapping, out_dir: Path) -> dict[str, Path]:
    """One contact sheet per style: rows = grid rows, columns = views × seeds."""
    sheets: dict[str, Path] = {}
    columns = len(report["views"]) * len(report["seeds"])
    for style in report["styles"]:
        by_row: dict[str, list[Mapping]] = {}
        for cell in style["cells"]:
            by_row.setdefault(cell["row"], []).append(cell)
        cells, labels = [], []
        for row in style["rows"]:
            labels.append(f"{row['label']}  R={_num(row['scores']['retention'])}")
            for cell in by_row.get(row["key"], []):
                with Image.open(out_dir / cell["image"]) as im:
                    cells.append(SheetCell(im.copy(), f"id{_num(cell['identity'])} st{_num(cell['style'])}"))
        # The default bitmap font has ASCII only: no "×" or dashes in sheet text.
        title = f"{report['character']['name']} x {style['name']}; columns: " + ", ".join(
            f"{v} s{s}" for v in report["views"] for s in report["seeds"])
        size = max(SHEET_MIN_CELL, min(256, max((c.image.width for c in cells), default=64)))
        sheet = make_contact_sheet(cells, columns, cell_size=size, title=title, row_labels=labels)
        path = out_dir / "sheets" / f"{_safe_name(style['name'])}.png"
        save_contact_sheet(sheet, path)
        sheets[style["name"]] = path
    return sheets


def _figure(cell: Mapping, out_dir: Path) -> str:
    caption = f"id {_num(cell['identity'])} · st {_num(cell['style'])}"
    if cell.get("identity_set") is not None:
        caption += f" · set {_num(cell['identity_set'])}"
    return (f'<figure><a href="{_e(cell["image"])}"><img alt="{_e(cell["view"])} seed {cell["seed"]}" '
            f'src="{_data_uri(out_dir / cell["image"])}"></a><figcaption>{_e(caption)}</figcaption></figure>')


def _grid_table(style: Mapping, report: Mapping, out_dir: Path, cells_key: str = "cells",
                rows_key: str = "rows") -> str:
    by_row: dict[str, dict[tuple[str, int], Mapping]] = {}
    for cell in style[cells_key]:
        by_row.setdefault(cell["row"], {})[(cell["view"], cell["seed"])] = cell
    seeds = sorted({c["seed"] for c in style[cells_key]}) if style[cells_key] else []
    head = "".join(f"<th>{_e(v)}<br>seed {s}</th>" for v in report["views"] for s in seeds)
    out = [f"<table><tr><th>row</th><th>retention</th><th>style gain</th><th>clash</th>{head}</tr>"]
    for row in style[rows_key]:
        found = by_row.get(row["key"])
        if not found:
            continue
        sc = row["scores"]
        figures = "".join(f"<td>{_figure(found[(v, s)], out_dir)}</td>" if (v, s) in found else "<td></td>"
                          for v in report["views"] for s in seeds)
        out.append(f"<tr><th>{_e(row['label'])}<br><code>{_e(row['a1111_prompt'])}</code></th>"
                   f"<td class=num>{_num(sc.get('retention'))}</td><td class=num>{_num(sc.get('style_gain'))}</td>"
                   f"<td class=num>{_num(sc.get('clash'))}</td>{figures}</tr>")
    return "".join(out) + "</table>"


def _weightspace_table(ws: Mapping | None) -> str:
    if not ws:
        return "<p>No weight-space analysis.</p>"
    rows = "".join(
        f"<tr><td>{_e(b['block'])}</td><td class=num>{b['modules']}</td><td class=num>{_num(b['cosine'])}</td>"
        f"<td class=num>{_num(b['projection_energy'])}</td><td class=num>{_num(b['chance'])}</td>"
        f"<td class=num>{_num(b['style_share'])}</td><td class=num>{_num(b['magnitude_ratio'])}</td>"
        f"<td class='{'flag' if b['flagged'] else ''}'>{_e('; '.join(b['reasons']) or '-')}</td></tr>"
        for b in ws["blocks"])
    return (f"<p>{ws['shared_modules']} modules touched by both LoRAs; overall cosine {_num(ws['overall_cosine'])}, "
            f"projection energy {_num(ws['overall_projection_energy'])}. Flagged blocks: "
            f"<b>{_e(', '.join(ws['flagged_blocks']) or 'none')}</b></p>"
            "<table><tr><th>block</th><th>modules</th><th>cosine</th><th>energy in char. subspace</th><th>chance</th>"
            f"<th>style share</th><th>|style|/|char|</th><th>flag</th></tr>{rows}</table>")


def _advice(advice: Mapping | None) -> str:
    if not advice:
        return ""
    verified = advice.get("verified")
    check = ""
    if verified:
        cls, word = ("ok", "verified") if verified["passed"] else ("bad", "NOT verified")
        check = (f"<p class={cls}>{word} on held-out seeds {_e(verified['seeds'])}: retention "
                 f"{_num(verified['retention'])}, style gain {_num(verified['style_gain'])}</p>")
    return (f"<div class='{'ok' if advice['passed'] else 'bad'}'><b>Advice:</b> {_e(advice['label'])} — "
            f"{_e(advice['reason'])}</div>{check}<p>A1111 / Forge (LoRA Block Weight extension):</p>"
            f"<pre>{_e(advice['a1111'])}</pre><p>diffusers <code>pipe.set_adapters</code> weights:</p>"
            f"<pre>{_e(json.dumps(advice['diffusers_set_adapters']))}</pre>")


def _fix(fix: Mapping | None) -> str:
    if not fix:
        return ""
    rows = "".join(f"<tr><td class=num>{_num(r['style_weight'])}</td><td class=num>{_num(r['retention_before'])}</td>"
                   f"<td class=num>{_num(r['retention_after'])}</td><td class=num>{_num(r['style_gain_before'])}</td>"
                   f"<td class=num>{_num(r['style_gain_after'])}</td></tr>" for r in fix["before_after"])
    return (f"<h2>Compat LoRA: before / after</h2><p>{_e(fix['file'])} — method {_e(fix['method'])} "
            f"({_e(fix['citation'])}). Style energy in the character's subspace {_num(fix['energy_before'], 3)} → "
            f"{_num(fix['energy_after'], 3)}; style energy kept {_num(fix['kept_energy'], 3)}.</p>"
            "<table><tr><th>style weight</th><th>retention before</th><th>after</th><th>style gain before</th>"
            f"<th>after</th></tr>{rows}</table>")


def render_html(report: Mapping, out_dir: Path, sheets: Mapping[str, Path] | None = None) -> str:
    """The report page; every image is a data URI (thumbnails) or a relative file in `out_dir`."""
    metric = report["metric"]
    warn = f"<div class=warn>{_e(metric['note'])}</div>" if metric.get("note") else ""
    ranking = "".join(
        f"<tr><td class=num>{r['rank']}</td><td>{_e(r['style'])}</td><td class=num>{_num(r['mean_clash'])}</td>"
        f"<td class=num>{_num(r['max_safe_weight'])}</td><td><code>{_e(r['advice'] or ('-' if r.get('style_shows', True) else 'style does not show'))}</code></td>"
        f"<td>{'yes' if r['verified'] else ('no' if r['verified'] is False else '-')}</td></tr>"
        for r in report["ranking"])
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>Style clash: {_e(report['character']['name'])}"
        f"</title><style>{_CSS}</style></head><body>",
        f"<h1>Style clash report — {_e(report['character']['name'])}</h1>",
        f"<p>Character LoRA <code>{_e(report['character'].get('lora', ''))}</code> on base model "
        f"<code>{_e(report.get('base_model', ''))}</code> ({_e(report['arch'])}). Identity metric: "
        f"<b>{_e(metric['identity_metric'])}</b>; style metric: {_e(metric.get('style_metric', '-'))}. "
        f"Threshold: retention ≥ {_num(report['threshold'])}.</p>{warn}",
        "<p>Retention: 1 = as the character alone, 0 = as lost as with no character LoRA. Style gain: 0 = no "
        "style, 1 = as the style alone. Clash = identity drop against the character-only baseline.</p>",
        "<h2>Ranking (worst clash first)</h2><table><tr><th>#</th><th>style</th><th>mean clash</th>"
        f"<th>highest safe weight</th><th>advice</th><th>verified</th></tr>{ranking}</table>",
    ]
    for style in report["styles"]:
        parts.append(f"<h2 id='{_e(_safe_name(style['name']))}'>{_e(style['name'])}</h2>")
        parts.append(_advice(style.get("advice")))
        if style.get("style_note"):
            parts.append(f"<div class=bad><b>No advice:</b> {_e(style['style_note'])}</div>")
        parts.append("<h3>Weight space</h3>" + _weightspace_table(style.get("weightspace")))
        parts.append("<h3>Grid</h3>" + _grid_table(style, report, out_dir))
        if style.get("verify_cells"):
            parts.append("<h3>Verification (held-out seeds)</h3>" + _grid_table(style, report, out_dir, "verify_cells", "verify_rows"))
        if sheets and style["name"] in sheets:
            rel = sheets[style["name"]].relative_to(out_dir).as_posix()
            parts.append(f"<p>Contact sheet: <a href='{_e(rel)}'>{_e(rel)}</a></p>"
                         f"<img class=sheet alt='contact sheet {_e(style['name'])}' src='{_e(rel)}'>")
    parts.append(_fix(report.get("fix")))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_clash_report(report: dict, out_dir: Path) -> ReportFiles:
    """Write sheets/<style>.png, report.json and report.html into `out_dir` (each atomically)."""
    out_dir = Path(out_dir)
    sheets = write_style_sheets(report, out_dir)
    for style in report["styles"]:
        style["sheet"] = sheets[style["name"]].relative_to(out_dir).as_posix()
    json_path = atomic_write_text(out_dir / "report.json", json.dumps(report, indent=1, sort_keys=False))
    html_path = atomic_write_text(out_dir / "report.html", render_html(report, out_dir, sheets))
    return ReportFiles(Path(html_path), Path(json_path), sheets)
