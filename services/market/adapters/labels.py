"""Parcel labels and packing lists as one self-contained, printable HTML page.

A label is sized for a 100 × 70 mm sticker (one per printed page, `@page` 100mm 70mm): drop
point, household reference, address (the only personal datum on it), amount in yuan, items and
an inline SVG QR code of the payment reference (zxing-cpp's encoder). Every text that comes from a user
(names, addresses, ids) is HTML-escaped; the QR SVG holds only numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from html import escape

import zxingcpp

from services.common.catalogue import Catalogue
from services.market.domain.money import format_yuan
from services.market.domain.outlets import Community, DropPoint, Outlet
from services.market.domain.parcels import Parcel, packing_lists

LANGS = ("zh", "en")
LABEL_MAX_LINES = 8
# Level M, never Micro QR (phone wallets do not read it). zxing-cpp's C++ encoder: ~90 µs a code
# where pure-Python segno took 245 µs even with a fixed mask (bench/market_orders.py).
QR_ERROR = "M"

TEXTS = {
    "zh": {"title": "包裹标签", "drop_point": "存放点", "household": "户编码", "address": "地址",
           "amount": "金额", "items": "物品", "more": "另有 {n} 项", "ref": "付款参考号",
           "online": "已在线支付", "collected": "网格员统收", "on_account": "代付记账",
           "packing": "分装清单", "parcels": "包裹", "item": "物品", "quantity": "数量", "total": "合计",
           "parcel": "包裹号"},
    "en": {"title": "Parcel labels", "drop_point": "Drop point", "household": "Household", "address": "Address",
           "amount": "Amount", "items": "Items", "more": "{n} more", "ref": "Payment ref",
           "online": "paid online", "collected": "collected by grid worker", "on_account": "on account",
           "packing": "Packing list", "parcels": "Parcels", "item": "Item", "quantity": "Qty", "total": "Total",
           "parcel": "Parcel"},
}

CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;color:#000}
.label{width:100mm;height:70mm;padding:3mm;overflow:hidden;border:1px dashed #999;margin:2mm;
 display:inline-grid;grid-template-columns:1fr 26mm;grid-template-rows:auto 1fr;gap:1mm 2mm;vertical-align:top}
.label header{grid-column:1/3;display:flex;justify-content:space-between;font-size:11pt;font-weight:bold;
 border-bottom:0.4mm solid #000;padding-bottom:1mm}
.label .who{font-size:9pt;line-height:1.25}
.label .who .ref{font-family:monospace;font-size:11pt;font-weight:bold}
.label .addr{font-size:10pt;font-weight:bold;word-break:break-all}
.label ul{margin:1mm 0 0;padding-left:4mm;font-size:8pt;line-height:1.2}
.label .pay{text-align:center;font-size:7pt}
.label .pay svg{width:26mm;height:26mm;display:block}
.label .amount{font-size:13pt;font-weight:bold}
@media print{
 @page{size:100mm 70mm;margin:0}
 .label{margin:0;border:none;display:grid;page-break-after:always;break-after:page;break-inside:avoid}
 .label:last-child{page-break-after:auto;break-after:auto}
}
"""
SHEET_CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;color:#000}
.sheet{width:190mm;padding:5mm}
.sheet table{border-collapse:collapse;width:100%;font-size:10pt;margin-bottom:4mm}
.sheet th,.sheet td{border:1px solid #000;padding:1mm 2mm;text-align:left}
.sheet td.n{text-align:right}
@media print{@page{size:A4;margin:10mm}.sheet{page-break-after:always;break-after:page;width:auto;padding:0}
 .sheet:last-child{page-break-after:auto;break-after:auto} tr{break-inside:avoid}}
"""

CHUNK = 7  # modules per precomputed piece of a row


def _chunk_path(bits: tuple[int, ...]) -> str:
    """A piece of a row as relative path commands from its left edge to its right edge: 'm'
    over light modules, 'h' over dark ones (pieces join end to start, so a row is their sum)."""
    out = []
    for dark, run in itertools.groupby(bits):
        n = len(list(run))
        out.append(f"h{n}" if dark else f"m{n} 0")
    return "".join(out)


# every piece of 1 … CHUNK modules, keyed by its bytes (1 = dark): 254 strings
_PIECES = {bytes(bits): _chunk_path(bits)
           for n in range(1, CHUNK + 1) for bits in itertools.product((0, 1), repeat=n)}


def qr_matrix(data: str) -> list[bytes]:
    """The QR code's modules, one bytes per row, 1 = dark (no quiet zone)."""
    image = zxingcpp.create_barcode(data, zxingcpp.BarcodeFormat.QRCode, ec_level=QR_ERROR).to_image(
        scale=1, add_quiet_zones=False)
    view = memoryview(image)
    height, width = view.shape
    pixels = bytes(view).translate(_DARK)
    return [pixels[y * width:(y + 1) * width] for y in range(height)]


_DARK = bytes([1] * 128 + [0] * 128)  # the encoder's image: 0 black (a dark module), 255 white


@lru_cache(maxsize=4096)
def qr_svg(data: str) -> str:
    """An inline SVG of the QR code of `data` (the encoder's module matrix; one path, a 1-module
    quiet zone each side so the 26 mm box keeps the code large; the label's white margin adds to
    it). Kept for reprints: a community order's labels asked for again cost no QR encoding."""
    matrix = qr_matrix(data)
    width = len(matrix[0]) if matrix else 0
    cuts = range(0, width, CHUNK)
    d = "".join(f"M1 {y + 1.5}" + "".join(_PIECES[row[c:c + CHUNK]] for c in cuts)
                for y, row in enumerate(matrix))
    size = len(matrix) + 2
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" role="img" '
            f'shape-rendering="crispEdges"><path fill="none" stroke="#000" d="{d}"/></svg>')


def _lang(lang: str) -> dict[str, str]:
    return TEXTS[lang if lang in LANGS else "zh"]


def _drop_points(drop_points: Mapping[str, DropPoint] | Iterable[DropPoint]) -> dict[str, DropPoint]:
    if isinstance(drop_points, Mapping):
        return dict(drop_points)
    return {d.drop_point_id: d for d in drop_points}


def _item_name(code: str, catalogue: Catalogue | None, lang: str) -> str:
    item = catalogue.items.get(code) if catalogue else None
    if item is None:
        return code
    return item.name_zh if lang == "zh" else item.name_en


def _page(title: str, css: str, body: str, lang: str) -> str:
    return (f'<!DOCTYPE html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            f'<title>{escape(title)}</title><style>{css}</style></head><body>{body}</body></html>')


def render_label(parcel: Parcel, *, outlet: Outlet, community: Community, drop_point: DropPoint | None,
                 address: str, lang: str = "zh", catalogue: Catalogue | None = None) -> str:
    t = _lang(lang)
    dp = escape(drop_point.name if drop_point else parcel.drop_point_id)
    lines = parcel.lines[:LABEL_MAX_LINES]
    items = "".join(f"<li>{escape(_item_name(ln.item_code, catalogue, lang))} × {ln.quantity}</li>" for ln in lines)
    if len(parcel.lines) > LABEL_MAX_LINES:
        items += f"<li>{escape(t['more'].format(n=len(parcel.lines) - LABEL_MAX_LINES))}</li>"
    ref = escape(parcel.payment_reference)
    return (f'<section class="label" data-parcel="{escape(parcel.parcel_id)}">'
            f'<header><span>{escape(t["drop_point"])}: {dp}</span><span>{escape(community.name)}</span></header>'
            f'<div class="who"><div>{escape(t["household"])} <span class="ref">{escape(parcel.household_ref)}</span></div>'
            f'<div class="addr">{escape(address)}</div>'
            f'<div>{escape(t["amount"])} <span class="amount">¥{format_yuan(parcel.amount_fen)}</span> '
            f'({escape(t.get(parcel.payment_mode, parcel.payment_mode))})</div>'
            f'<ul>{items}</ul></div>'
            f'<div class="pay">{qr_svg(parcel.payment_reference)}<div>{ref}</div>'
            f'<div>{escape(outlet.name)}</div></div></section>')


def render_labels_html(parcels: Sequence[Parcel], *, outlet: Outlet, community: Community,
                       drop_points: Mapping[str, DropPoint] | Iterable[DropPoint],
                       addresses: Mapping[str, str], lang: str = "zh",
                       catalogue: Catalogue | None = None) -> str:
    """One page, one label per parcel; `addresses` maps household order id → address."""
    dps = _drop_points(drop_points)
    body = "".join(render_label(p, outlet=outlet, community=community, drop_point=dps.get(p.drop_point_id),
                                address=addresses.get(p.household_order_id, ""), lang=lang, catalogue=catalogue)
                   for p in parcels)
    return _page(f"{_lang(lang)['title']} {community.name}", CSS, body, lang)


def render_packing_list_html(parcels: Sequence[Parcel], *, outlet: Outlet, community: Community,
                             drop_points: Mapping[str, DropPoint] | Iterable[DropPoint], lang: str = "zh",
                             catalogue: Catalogue | None = None) -> str:
    """One sheet per drop point: units per item, then its parcels (household ref, amount); no address."""
    t = _lang(lang)
    dps = _drop_points(drop_points)
    by_id = {p.parcel_id: p for p in parcels}
    sheets = []
    for pl in packing_lists(parcels):
        dp = dps.get(pl.drop_point_id)
        rows = "".join(f'<tr><td>{escape(_item_name(ln.item_code, catalogue, lang))}</td>'
                       f'<td class="n">{ln.quantity}</td></tr>' for ln in pl.lines)
        prow = "".join(f'<tr><td>{escape(pid)}</td><td>{escape(by_id[pid].household_ref)}</td>'
                       f'<td class="n">¥{format_yuan(by_id[pid].amount_fen)}</td></tr>' for pid in pl.parcel_ids)
        sheets.append(
            f'<section class="sheet"><h1>{escape(t["packing"])}: {escape(dp.name if dp else pl.drop_point_id)}</h1>'
            f'<p>{escape(community.name)} · {escape(outlet.name)} · {len(pl.parcel_ids)} {escape(t["parcels"])} · '
            f'{escape(t["total"])} ¥{format_yuan(pl.amount_fen)}</p>'
            f'<table><thead><tr><th>{escape(t["item"])}</th><th>{escape(t["quantity"])}</th></tr></thead>'
            f'<tbody>{rows}</tbody></table>'
            f'<table><thead><tr><th>{escape(t["parcel"])}</th><th>{escape(t["household"])}</th>'
            f'<th>{escape(t["amount"])}</th></tr></thead><tbody>{prow}</tbody></table></section>')
    return _page(f"{t['packing']} {community.name}", SHEET_CSS, "".join(sheets), lang)
