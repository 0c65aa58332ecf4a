"""Settings for the live exchange, validated once at startup, never per request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path

    @classmethod
    def from_env(cls, *, data_dir: Path) -> Settings:
        return cls(data_dir=data_dir)
