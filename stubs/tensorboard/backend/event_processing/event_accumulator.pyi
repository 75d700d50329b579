from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SCALARS: str
TENSORS: str
STORE_EVERYTHING_SIZE_GUIDANCE: dict[str, int]

@dataclass(frozen=True)
class ScalarEvent:
    wall_time: float
    step: int
    value: float

class EventAccumulator:
    def __init__(
        self,
        path: str,
        size_guidance: Mapping[str, int] | None = None,
        compression_bps: tuple[int, ...] = ...,
        purge_orphaned_data: bool = True,
    ) -> None: ...
    def Reload(self) -> EventAccumulator: ...
    def Tags(self) -> dict[str, Any]: ...
    def Scalars(self, tag: str) -> list[ScalarEvent]: ...
    def PluginTagToContent(self, plugin_name: str) -> dict[str, bytes]: ...
