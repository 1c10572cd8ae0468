import re
from html.parser import HTMLParser

import numpy as np
import zxingcpp

from services.market.adapters.labels import (
    qr_matrix,
    qr_svg,
    render_labels_html,
    render_packing_list_html,
)
from services.market.domain.outlets import Community, DropPoint, Outlet
from services.market.domain.parcels import Parcel, ParcelLine
from tests.unit.market.market_support import CATALOGUE, ESSENTIAL

A, B = ESSENTIAL[:2]
EVIL = '<script>alert("x")</script>'
OUTLET = Outlet("O1", "华联 & Co", "supermarket", "T1", 30.0, 120.0)
VILLAGE = Community("C1", EVIL, "T1", 30.0, 120.0, (DropPoint("DP1", '东门 <b>"1"</b>'), DropPoint("DP2", "西门")), 80)


def parcel(oid, dp="DP1", lines=((A, 2, 250), (B, 1, 1200)), mode="collected"):
    pl = tuple(ParcelLine(c, q, p) for c, q, p in lines)
    return Parcel(f"P-{oid}", oid, f"H-{oid:0>10}", dp, pl, sum(q * p for _, q, p in lines), f"MKT-{oid}", mode)


PARCELS = [parcel("o1"), parcel("o2", mode="on_account"), parcel("o3", dp="DP2", lines=((A, 1, 250),))]
ADDRESSES = {"o1": "3栋 <img src=x onerror=alert(1)> 502", "o2": "4栋 101", "o3": "5栋 & 6栋"}


def labels(lang="zh"):
    return render_labels_html(PARCELS, outlet=OUTLET, community=VILLAGE, drop_points=VILLAGE.drop_points,
                              addresses=ADDRESSES, lang=lang, catalogue=CATALOGUE)


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def parse(html):
    p = Tags()
    p.feed(html)
    return p


def test_one_label_per_parcel_with_its_fields():
    html = labels()
    assert html.count('class="label"') == 3
    one = html.split('data-parcel="P-o1"')[1].split("</section>")[0]
    assert "H-00000000o1" in one and "¥17.00" in one and "MKT-o1" in one and "网格员统收" in one
    assert CATALOGUE.items[A].name_zh in one and "× 2" in one
    assert "东门" in one
    assert html.count("<svg") == 3


def test_user_text_is_inert():
    for html in (labels(), labels("en"),
                 render_packing_list_html(PARCELS, outlet=OUTLET, community=VILLAGE,
                                          drop_points=VILLAGE.drop_points, lang="zh")):
        p = parse(html)
        assert "script" not in p.tags and "img" not in p.tags and "b" not in p.tags
        assert "<script>" not in html and "<img" not in html
        assert any(EVIL in t for t in p.text)  # shown as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in labels() and "华联 &amp; Co" in labels()


def test_print_css_for_a_100x70_sticker():
    html = labels()
    assert "@media print" in html and "size:100mm 70mm" in html
    assert "width:100mm;height:70mm" in html and "break-after:page" in html
    assert "<link" not in html and "src=" not in html.replace("src=x", "")  # self-contained


def test_english_labels():
    html = labels("en")
    assert 'lang="en"' in html and "Drop point" in html and CATALOGUE.items[A].name_en in html


def test_long_parcel_shows_the_rest_as_a_count():
    many = parcel("o9", lines=tuple((c, 1, 100) for c in ESSENTIAL[:11]))
    html = render_labels_html([many], outlet=OUTLET, community=VILLAGE, drop_points=VILLAGE.drop_points,
                              addresses={}, lang="en")
    assert "3 more" in html and html.count("<li>") == 9


def _matrix_from_svg(svg):
    """Replays the path: per row 'M x y' then 'hW' (draw) and 'mDX 0' (move right)."""
    size = int(re.search(r'viewBox="0 0 (\d+) ', svg).group(1)) - 2
    grid = [[0] * size for _ in range(size)]
    path = re.search(r' d="([^"]*)"', svg).group(1)
    for x, y, rest in re.findall(r"M(\d+) ([\d.]+)((?:h\d+|m\d+ 0)+)", path):
        row, pen = int(float(y) - 1.5), int(x) - 1
        for cmd, n in re.findall(r"(h|m)(\d+)", rest):
            if cmd == "h":
                for i in range(pen, pen + int(n)):
                    grid[row][i] = 1
            pen += int(n)
    return grid


def _read(grid: list[list[int]]) -> str:
    """What a scanner reads from the drawn modules (zxing-cpp's reader, 4 px a module, quiet zone)."""
    image = np.kron(1 - np.pad(np.array(grid, dtype=np.uint8), 4), np.ones((4, 4), dtype=np.uint8)) * 255
    found = zxingcpp.read_barcode(image)
    return found.text if found else ""


def test_qr_svg_draws_a_code_a_scanner_reads_as_the_payment_reference():
    svg = qr_svg("MKT-HO-0001")
    assert _read(_matrix_from_svg(svg)) == "MKT-HO-0001"
    assert _matrix_from_svg(svg) == [list(r) for r in qr_matrix("MKT-HO-0001")]
    assert _read(_matrix_from_svg(qr_svg("MKT-HO-0002"))) == "MKT-HO-0002"
    assert "MKT" not in svg


def test_packing_list_per_drop_point():
    html = render_packing_list_html(PARCELS, outlet=OUTLET, community=VILLAGE, drop_points=VILLAGE.drop_points,
                                    lang="zh", catalogue=CATALOGUE)
    assert html.count('class="sheet"') == 2
    first = html.split('class="sheet"')[1]
    assert "P-o1" in first and "P-o2" in first and "P-o3" not in first
    assert f"{CATALOGUE.items[A].name_zh}</td><td class=\"n\">4<" in first
    assert "4栋" not in html  # no address on the packing list
    assert "size:A4" in html
