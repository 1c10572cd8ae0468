"""Auditing the ledger (RULES.md §8): stored lot balances reconciled with the sums of their lines,
and the hash chain checked for edited, deleted, inserted and reordered lines and against
anchors (a seq and hash printed in a daily report)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from services.common.errors import InvalidInput

from .ledger import GENESIS_HASH, KEYED, UNKEYED, LedgerLine, line_hash


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A stored balance that differs from the one the ledger lines give."""

    lot_id: str
    field: str  # on_hand | reserved | quarantined | missing (no stored row) | unknown_lot
    from_lines: int
    stored: int


def sum_balances(lines: Iterable[LedgerLine]) -> dict[str, list[int]]:
    """Per lot [on_hand, reserved, quarantined], summed straight from the lines."""
    out: dict[str, list[int]] = {}
    get = out.get
    for ln in lines:
        b = get(ln.lot_id)
        if b is None:
            b = out[ln.lot_id] = [0, 0, 0]
        b[0] += ln.on_hand_delta
        b[1] += ln.reserved_delta
        b[2] += ln.quarantined_delta
    return out


def reconcile(lines: Iterable[LedgerLine], stored_balances: Mapping[str, object]) -> list[Mismatch]:
    """Recompute every lot's balance from the lines and compare with the stored balances
    (objects with on_hand, reserved and quarantined attributes, e.g. LotBalance)."""
    derived = sum_balances(lines)
    out: list[Mismatch] = []
    fields = ("on_hand", "reserved", "quarantined")
    for lot_id in sorted(derived):
        figures = derived[lot_id]
        st = stored_balances.get(lot_id)
        if st is None:
            out.append(Mismatch(lot_id, "missing", figures[0], 0))
            continue
        for i, f in enumerate(fields):
            s = getattr(st, f)
            if s != figures[i]:
                out.append(Mismatch(lot_id, f, figures[i], s))
    for lot_id in sorted(set(stored_balances) - set(derived)):
        st = stored_balances[lot_id]
        out.append(Mismatch(lot_id, "unknown_lot", 0, st.on_hand))
    return out


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where the chain does not hold. problem: hash (the line's content was changed, or it was
    signed without the county key), prev_hash (a line before it was removed, inserted or changed
    and re-hashed), seq (a gap or a reordering), scheme (an unkeyed line where only keyed lines
    may be), head (lines after the last one given are missing), anchor (the line differs from,
    or lacks, the seq and hash held outside the system)."""

    seq: int
    position: int
    problem: str
    detail: str


@dataclass(frozen=True, slots=True)
class Anchor:
    """A line's seq and hash kept outside the system (the daily report's chain head)."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """`<seq>:<hash>` as printed in the daily report."""
        seq, _, digest = text.strip().partition(":")
        digest = digest.strip().lower()
        if not seq.strip().isdigit() or int(seq) < 1 or len(digest) != 64 or any(
                c not in "0123456789abcdef" for c in digest):
            raise InvalidInput("anchor", f"must be <seq>:<64 hex digits>, got {text[:80]!r}")
        return cls(int(seq), digest)


def check_chain(
    lines: Iterable[LedgerLine],
    breaks: list[ChainBreak],
    *,
    key: bytes,
    start_hash: str = GENESIS_HASH,
    start_seq: int = 0,
    expected_head: tuple[int, str] | None = None,
    unkeyed_through: int | None = 0,
    anchors: Iterable[Anchor] = (),
) -> Iterator[LedgerLine]:
    """Check a run of lines while passing them on (memory stays flat), adding every break to
    `breaks`. start_hash / start_seq: the line before the run (genesis by default).
    expected_head: the (seq, hash) the store says is last, to detect a cut tail.
    unkeyed_through: the last seq that may be unkeyed (None: any line before the first keyed
    one)."""
    prev_hash, prev_seq, pos = start_hash, start_seq, -1
    keyed_seen = False
    pending = {a.seq: a for a in anchors}
    for pos, ln in enumerate(lines):
        if ln.seq != prev_seq + 1:
            what = "gap" if ln.seq > prev_seq + 1 else "out of order"
            breaks.append(ChainBreak(ln.seq, pos, "seq", f"{what}: expected {prev_seq + 1}, got {ln.seq}"))
        if ln.prev_hash != prev_hash:
            breaks.append(ChainBreak(ln.seq, pos, "prev_hash", "does not point at the line before it"))
        if ln.scheme == UNKEYED and (keyed_seen or (unkeyed_through is not None
                                                    and ln.seq > unkeyed_through)):
            breaks.append(ChainBreak(ln.seq, pos, "scheme", "unkeyed (sha256) where only keyed "
                                                            "lines may be / 此处只应有密钥签名的行"))
        keyed_seen = keyed_seen or ln.scheme == KEYED
        try:
            good = line_hash(ln, key) == ln.hash
        except Exception as exc:  # noqa: BLE001 - a tampered value that cannot even be hashed
            breaks.append(ChainBreak(ln.seq, pos, "hash", f"cannot be hashed: {exc}"))
        else:
            if not good:
                breaks.append(ChainBreak(ln.seq, pos, "hash", "content does not match its hash"))
        anchor = pending.pop(ln.seq, None)
        if anchor is not None and anchor.hash != ln.hash:
            breaks.append(ChainBreak(ln.seq, pos, "anchor",
                                     f"hash {ln.hash[:16]}… differs from the anchor "
                                     f"{anchor.hash[:16]}… / 与留存的链头锚点不符"))
        prev_hash, prev_seq = ln.hash, ln.seq
        yield ln
    for anchor in pending.values():
        breaks.append(ChainBreak(anchor.seq, pos, "anchor",
                                 f"line {anchor.seq} is not in the ledger / 台账中没有锚点所指的行"))
    if expected_head is not None and (prev_seq, prev_hash) != tuple(expected_head):
        breaks.append(ChainBreak(prev_seq, pos, "head",
                                 f"last line is {prev_seq}, the store's head is {expected_head[0]}"))


def verify_chain(lines: Iterable[LedgerLine], *, key: bytes = b"", **options) -> list[ChainBreak]:
    """check_chain over a whole run of lines: its breaks (none: the chain holds)."""
    breaks: list[ChainBreak] = []
    for _ in check_chain(lines, breaks, key=key, **options):
        pass
    return breaks
