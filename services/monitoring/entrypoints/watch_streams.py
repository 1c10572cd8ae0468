"""The WatchAlerts streams open on one API process, counted per identity (the caller's token)
and in all, so that one client, or all of them together, cannot hold more than its share of the
process. Used from the event loop only (WatchAlerts runs there), so no lock."""

from __future__ import annotations


class StreamRefused(Exception):
    """One stream too many; the message names the limit, in English and Chinese."""


class WatchStream:
    """One open stream's place; close() gives it back, once however often it is called."""

    __slots__ = ("_streams", "identity", "_open")

    def __init__(self, streams: WatchStreams, identity: str):
        self._streams = streams
        self.identity = identity
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._streams._give_back(self.identity)


class WatchStreams:
    def __init__(self, per_identity: int, most: int):
        self.per_identity = per_identity
        self.most = most
        self.by_identity: dict[str, int] = {}
        self.total = 0

    def open(self, identity: str) -> WatchStream:
        """A place for one more stream of `identity`, or StreamRefused."""
        mine = self.by_identity.get(identity, 0)
        if mine >= self.per_identity:
            raise StreamRefused(
                f"identity {identity!r} already has {mine} WatchAlerts streams open, the most one identity "
                f"may have (MONITORING_WATCH_STREAMS_PER_IDENTITY={self.per_identity}); close one first "
                f"/ 该身份已打开 {mine} 个预警订阅流，已达每个身份的上限 {self.per_identity} 个，请先关闭一个")
        if self.total >= self.most:
            raise StreamRefused(
                f"this server already has {self.total} WatchAlerts streams open, the most it takes "
                f"(MONITORING_WATCH_STREAMS_MAX={self.most}); try again later "
                f"/ 本服务已打开 {self.total} 个预警订阅流，已达总上限 {self.most} 个，请稍后再试")
        self.by_identity[identity] = mine + 1
        self.total += 1
        return WatchStream(self, identity)

    def _give_back(self, identity: str) -> None:
        self.total -= 1
        left = self.by_identity[identity] - 1
        if left:
            self.by_identity[identity] = left
        else:
            del self.by_identity[identity]
