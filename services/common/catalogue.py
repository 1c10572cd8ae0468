"""The item catalogue (物资目录): one versioned reference file that every service reads.

Quantities are integers in an item's catalogue unit. Rates (per-capita norms, spoilage
parameters) are floats: they are coefficients, not quantities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from services.common.errors import InvalidInput, NotFound

DEFAULT_PATH = Path(__file__).parent / "reference" / "catalogue.yaml"

STORAGE_CLASSES = (
    "ambient", "chilled", "frozen", "medicine_2_8", "controlled_room", "flammable", "oxidizer",
)
HAZARDS = (None, "flammable", "oxidizer", "acid")
# Hazard pairs never stored in one zone, either way round (RULES.md §9; chemical SDS, 篇11 §三(一)3).
INCOMPATIBLE_HAZARDS: tuple[tuple[str, str], ...] = (("flammable", "oxidizer"), ("acid", "oxidizer"))
MATERIAL_CLASSES = (None, "I", "II")


@dataclass(frozen=True)
class AlarmRule:
    """One alarm rule of a storage class (the LogTag / Fridge-tag model, RULES.md §9).

    kind: instant (one reading beyond the limit), consecutive (continuously beyond it for
    `duration_min`), cumulative (total time beyond it within `window_h` exceeds `duration_min`).
    op: '>' or '<' or '>=' or '<=' applied as `reading <op> limit`.
    """

    code: str
    kind: str
    metric: str
    op: str
    limit: float
    duration_min: float = 0.0
    window_h: float = 0.0
    spoilage: bool = False
    name_zh: str = ""
    name_en: str = ""


@dataclass(frozen=True)
class StorageClass:
    code: str
    name_zh: str
    name_en: str
    temp_min_c: float | None
    temp_max_c: float | None
    rh_max: float | None
    alarms: tuple[AlarmRule, ...]
    mkt_limit_c: float | None = None


@dataclass(frozen=True)
class SpoilageModel:
    """Square-root model parameters (Ratkowsky; Dalgaard): RRS(T) = ((T-Tmin)/(Tref-Tmin))^2."""

    sl_ref_days: float
    t_ref_c: float
    t_min_c: float


@dataclass(frozen=True)
class ItemGroup:
    code: str
    name_zh: str
    name_en: str
    reserve_days: float | None
    spoilage: SpoilageModel | None = None


@dataclass(frozen=True)
class PackageComponent:
    item_code: str
    quantity: int


@dataclass(frozen=True)
class Item:
    code: str
    name_zh: str
    name_en: str
    unit: str
    group: str
    storage_class: str
    shelf_life_days: int
    per_capita_daily: float
    essential: bool
    material_class: str | None
    hazard: str | None
    special_need: bool
    weight_kg: float
    volume_l: float
    components: tuple[PackageComponent, ...] = ()

    @property
    def is_package(self) -> bool:
        return bool(self.components)


@dataclass(frozen=True)
class Catalogue:
    version: str
    items: dict[str, Item]
    groups: dict[str, ItemGroup]
    storage_classes: dict[str, StorageClass]
    substitutes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def item(self, code: str) -> Item:
        try:
            return self.items[code]
        except KeyError:
            raise NotFound(f"unknown item code {code!r} (catalogue {self.version})") from None

    def packages_containing(self, item_code: str) -> list[Item]:
        """Standard packages (标准化蔬菜包 …) that may stand in for `item_code` when it is short."""
        return [self.items[p] for p in self.substitutes.get(item_code, ())]


def _req(d: dict, key: str, where: str):
    if key not in d:
        raise InvalidInput(f"{where}.{key}", "missing")
    return d[key]


def parse_catalogue(data: dict) -> Catalogue:
    """Build and validate a catalogue from its parsed YAML. Raises InvalidInput naming the field."""
    version = str(_req(data, "version", "catalogue"))
    groups: dict[str, ItemGroup] = {}
    for code, g in _req(data, "groups", "catalogue").items():
        sp = g.get("spoilage")
        groups[code] = ItemGroup(
            code=code, name_zh=g["name_zh"], name_en=g["name_en"],
            reserve_days=g.get("reserve_days"),
            spoilage=SpoilageModel(**sp) if sp else None,
        )
    classes: dict[str, StorageClass] = {}
    for code, c in _req(data, "storage_classes", "catalogue").items():
        if code not in STORAGE_CLASSES:
            raise InvalidInput(f"storage_classes.{code}", "unknown storage class")
        alarms = tuple(AlarmRule(**a) for a in c.get("alarms", ()))
        for a in alarms:
            if a.kind not in ("instant", "consecutive", "cumulative"):
                raise InvalidInput(f"storage_classes.{code}.alarms.{a.code}.kind", f"bad kind {a.kind!r}")
            if a.op not in (">", "<", ">=", "<="):
                raise InvalidInput(f"storage_classes.{code}.alarms.{a.code}.op", f"bad op {a.op!r}")
        classes[code] = StorageClass(
            code=code, name_zh=c["name_zh"], name_en=c["name_en"],
            temp_min_c=c.get("temp_min_c"), temp_max_c=c.get("temp_max_c"),
            rh_max=c.get("rh_max"), alarms=alarms, mkt_limit_c=c.get("mkt_limit_c"),
        )
    items: dict[str, Item] = {}
    for raw in _req(data, "items", "catalogue"):
        where = f"items.{raw.get('code', '?')}"
        code = _req(raw, "code", where)
        if code in items:
            raise InvalidInput(where, "duplicate item code")
        group = _req(raw, "group", where)
        if group not in groups:
            raise InvalidInput(f"{where}.group", f"unknown group {group!r}")
        sclass = _req(raw, "storage_class", where)
        if sclass not in classes:
            raise InvalidInput(f"{where}.storage_class", f"unknown storage class {sclass!r}")
        hazard = raw.get("hazard")
        if hazard not in HAZARDS:
            raise InvalidInput(f"{where}.hazard", f"unknown hazard {hazard!r}")
        mclass = raw.get("material_class")
        if mclass not in MATERIAL_CLASSES:
            raise InvalidInput(f"{where}.material_class", f"must be I, II or empty, got {mclass!r}")
        comps = tuple(
            PackageComponent(item_code=c["item"], quantity=int(c["quantity"]))
            for c in raw.get("components", ())
        )
        items[code] = Item(
            code=code, name_zh=_req(raw, "name_zh", where), name_en=_req(raw, "name_en", where),
            unit=_req(raw, "unit", where), group=group, storage_class=sclass,
            shelf_life_days=int(_req(raw, "shelf_life_days", where)),
            per_capita_daily=float(raw.get("per_capita_daily", 0.0)),
            essential=bool(raw.get("essential", True)), material_class=mclass, hazard=hazard,
            special_need=bool(raw.get("special_need", False)),
            weight_kg=float(raw.get("weight_kg", 1.0)), volume_l=float(raw.get("volume_l", 1.0)),
            components=comps,
        )
    substitutes: dict[str, list[str]] = {}
    for item in items.values():
        for comp in item.components:
            if comp.item_code not in items:
                raise InvalidInput(f"items.{item.code}.components", f"unknown item {comp.item_code!r}")
            if comp.quantity <= 0:
                raise InvalidInput(f"items.{item.code}.components.{comp.item_code}", "quantity must be > 0")
            substitutes.setdefault(comp.item_code, []).append(item.code)
    return Catalogue(
        version=version, items=items, groups=groups, storage_classes=classes,
        substitutes={k: tuple(sorted(v)) for k, v in substitutes.items()},
    )


_cache: dict[Path, Catalogue] = {}


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    p = Path(path) if path else DEFAULT_PATH
    if p not in _cache:
        with p.open(encoding="utf-8") as f:
            _cache[p] = parse_catalogue(yaml.safe_load(f))
    return _cache[p]
