"""Typed messages between the TSO, DSOs and aggregators, and the log that counts them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

KINDS = ("availability_schedule", "bid", "price", "interface_schedule",
         "prequalification_limit", "activation", "curtailment_request", "dispatch")


def _plain(value: Any) -> Any:
    if isinstance(value, pd.DataFrame | pd.Series):
        return _plain(value.to_numpy())
    if isinstance(value, np.ndarray):
        return np.round(value.astype(float), 6).tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class MessageLog:
    """Every message a scheme exchanged: kind, sender, receiver and size (bytes of JSON)."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def send(self, kind: str, sender: str, receiver: str, payload: Any,
             iteration: int = 0) -> Any:
        """Record a message and return its payload (so a scheme reads what was sent)."""
        if kind not in KINDS:
            raise ValueError(f"unknown message kind {kind!r}")
        size = len(json.dumps(_plain(payload), separators=(",", ":")).encode())
        self.rows.append({"kind": kind, "sender": sender, "receiver": receiver, "bytes": size,
                          "iteration": iteration})
        return payload

    def summary(self) -> pd.DataFrame:
        """Count and bytes by message kind."""
        frame = pd.DataFrame(self.rows, columns=["kind", "sender", "receiver", "bytes",
                                                 "iteration"])
        return frame.groupby("kind").agg(count=("bytes", "size"), bytes=("bytes", "sum"))
