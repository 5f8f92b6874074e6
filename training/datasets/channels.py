"""EEG channel names and orders of DEAP, MAHNOB-HCI and the EmotionKD teacher.

DEAP's preprocessed files and MAHNOB-HCI's BioSemi recordings both hold the 32 EEG channels in
the "Geneva" order. The teacher uses 28 of them (the midline Fz, Cz, Pz, Oz dropped), left
hemisphere first, then the homologous right channels in the same order (METHOD.md).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

#: the 32 EEG channels as DEAP (channels 0–31) and MAHNOB-HCI store them
GENEVA_32: Final[tuple[str, ...]] = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1",
    "Oz", "Pz", "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2",
    "P4", "P8", "PO4", "O2",
)  # fmt: skip

#: the teacher's 28 channels: left hemisphere, then the right homologues in the same order
EEG_28: Final[tuple[str, ...]] = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1",
    "Fp2", "AF4", "F4", "F8", "FC6", "FC2", "C4", "T8", "CP6", "CP2", "P4", "P8", "PO4", "O2",
)  # fmt: skip

MIDLINE: Final[tuple[str, ...]] = ("Fz", "Cz", "Pz", "Oz")

#: DEAP preprocessed channel 36 is skin resistance (Ohm); 32–39 are the peripheral channels
DEAP_PERIPHERAL: Final[tuple[str, ...]] = (
    "hEOG", "vEOG", "zEMG", "tEMG", "GSR", "Respiration belt", "Plethysmograph", "Temperature",
)  # fmt: skip
DEAP_GSR_INDEX: Final = 36
DEAP_CHANNELS: Final = 40

#: approximate scalp positions (x: left −1 … right +1, y: back −1 … front +1) of GENEVA_32,
#: used by the synthetic generator for topographies and volume conduction
_LEFT_POSITIONS: Final[dict[str, tuple[float, float]]] = {
    "Fp1": (-0.30, 0.95), "AF3": (-0.35, 0.75), "F3": (-0.45, 0.55), "F7": (-0.80, 0.60),
    "FC5": (-0.70, 0.30), "FC1": (-0.25, 0.30), "C3": (-0.50, 0.00), "T7": (-0.95, 0.00),
    "CP5": (-0.70, -0.30), "CP1": (-0.25, -0.30), "P3": (-0.45, -0.55), "P7": (-0.80, -0.60),
    "PO3": (-0.35, -0.75), "O1": (-0.30, -0.95),
}  # fmt: skip
_MIDLINE_POSITIONS: Final[dict[str, tuple[float, float]]] = {
    "Fz": (0.0, 0.55), "Cz": (0.0, 0.0), "Pz": (0.0, -0.55), "Oz": (0.0, -1.0),
}  # fmt: skip


def scalp_positions(names: tuple[str, ...] = GENEVA_32) -> npt.NDArray[np.float64]:
    """Approximate 2-D scalp positions ``(len(names), 2)`` (x right, y front), mirror-symmetric."""
    out = np.zeros((len(names), 2))
    right = {left.replace("1", "2").replace("3", "4").replace("5", "6").replace("7", "8"): left
             for left in _LEFT_POSITIONS}
    for i, name in enumerate(names):
        if name in _LEFT_POSITIONS:
            out[i] = _LEFT_POSITIONS[name]
        elif name in right:
            x, y = _LEFT_POSITIONS[right[name]]
            out[i] = (-x, y)
        else:
            out[i] = _MIDLINE_POSITIONS[name]
    return out


def channel_indices(source: tuple[str, ...], wanted: tuple[str, ...] = EEG_28) -> npt.NDArray[np.int64]:
    """Indices into ``source`` of the ``wanted`` channels (case-insensitive); KeyError names a missing one."""
    lookup = {name.lower(): i for i, name in enumerate(source)}
    missing = [name for name in wanted if name.lower() not in lookup]
    if missing:
        raise KeyError(f"channels {missing} not found among {list(source)}")
    return np.array([lookup[name.lower()] for name in wanted], dtype=np.int64)


#: GENEVA_32 index of each EEG_28 channel (DEAP channel indices of the teacher's input)
GENEVA_TO_28: Final[npt.NDArray[np.int64]] = channel_indices(GENEVA_32, EEG_28)

__all__ = [
    "DEAP_CHANNELS",
    "DEAP_GSR_INDEX",
    "DEAP_PERIPHERAL",
    "EEG_28",
    "GENEVA_32",
    "GENEVA_TO_28",
    "MIDLINE",
    "channel_indices",
    "scalp_positions",
]
