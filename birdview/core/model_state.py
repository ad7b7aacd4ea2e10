"""`ModelState`: what the model side is doing, as `birdview.core.assistant.Assistant` holds
it for the model panel and the chat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from birdview.core.model_card import ModelCard
from birdview.core.session_store import ModelInfo

__all__ = ["ModelState"]


@dataclass(frozen=True)
class ModelState:
    """What the model side is doing, for the model panel and the chat's enabled actions.

    ``state``: "none" (nothing configured), "starting", "loading", "ready" or "error".
    ``card``: the checkpoint's model card (None when it has none); ``card_problem``: why a
    card that is there could not be read (the model is usable all the same).
    """

    state: Literal["none", "starting", "loading", "ready", "error"] = "none"
    model_dir: str = ""
    family: str = ""
    precision: str = ""
    device: str = ""
    memory_bytes: int = 0
    message: str = ""
    notices: tuple[str, ...] = ()
    checkpoint_sha256: str = ""
    card: ModelCard | None = None
    card_problem: str = ""

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def info(self) -> ModelInfo:
        name = self.model_dir.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
        return ModelInfo(
            name=name,
            family=self.family,
            precision=self.precision,
            checkpoint_sha256=self.checkpoint_sha256,
        )
