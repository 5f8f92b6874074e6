"""A physiologically shaped skin-conductance generator (numpy only).

The one GSR model shared by the device emulators, the SDK's ``sim://`` source and the training
set generator. Skin conductance is the sum of

* a **tonic level** (skin conductance level, SCL, typically 1–20 µS) with a slow drift
  (integrated noise, low-passed so it moves over tens of seconds) that **rises with arousal**;
* **phasic skin conductance responses** (SCRs) of the canonical bi-exponential shape
  ``exp(-t/τ_decay) − exp(-t/τ_rise)`` (rise ≈ 0.75 s, recovery ≈ 2–3 s: Alexander et al. 2005,
  Benedek & Kaernbach 2010), occurring as a Poisson process;
* **sensor noise** (white, plus the sensor's quantisation when it has one).

How arousal shows follows what real wrist EDA does from rest to stress, measured on
Stress-Predict (Iqbal et al. 2022, MIT; 64 rest → stress transitions of 24 people, Empatica E4
at 4 Hz; ``emotionkd-train eda-contrast ../shared/data/stress-predict``, medians [quartiles]):

* the **tonic level** carries it. The stress span's mean is 1.24 [1.04, 1.58] times the level of
  the last minute of rest (+0.12 [0.01, 0.41] µS on wrist levels of about 0.4 µS), and it climbs
  slowly through the task: ×1.04 at 10 s, ×1.05 at 30 s, ×1.12 at 60 s, ×1.14 at 2 min, ×1.18 at
  3 min, ×1.33 at 5 min. Here: a first-order approach, time constant ``tonic_tau_s`` = 750 s,
  to a level ``1 + tonic_rise·arousal`` (``tonic_rise`` = 0.97) times the level at arousal 0,
  the least-squares fit of that median course from 10 s to 5 min (rms error 0.022);
* **SCRs** change little: 4.5 [1.3, 7.7] per minute at rest, 5.7 [1.1, 11.0] under stress, mean
  rise 0.064 [0.037, 0.111] µS at rest and 0.066 [0.043, 0.110] µS under stress (rising runs of
  0.02 µS or more at 4 Hz). Here: 4.5 → 5.7 per minute, amplitude 0.06 µS at every arousal (the
  same detector then reads 5.4 → 6.3 per minute and rises of 0.10 → 0.11 µS: it also counts
  the tonic drift's rising runs).

An arousal rise therefore shows over minutes, not seconds (tests/firmware_bridge/test_gsr_synth.py
measures the synthesizer with the same functions against these ranges).

:class:`GsrSynthesizer` produces an endless stream in chunks of any size; the same seed gives the
same samples whatever the chunking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError


@dataclass(frozen=True)
class GsrSynthConfig:
    """Parameters of the skin-conductance model.

    Attributes:
        rate_hz: output sampling rate (Hz).
        tonic_us: starting skin conductance level (µS), at the starting arousal.
        tonic_rise: the tonic level a sustained arousal ``a`` approaches is ``1 + tonic_rise·a``
            times the level at arousal 0 (dimensionless; measured, see the module docstring).
        tonic_tau_s: time constant of that approach (s).
        drift_us_per_sqrt_min: size of the tonic random drift (µS per √minute).
        scr_rate_per_min: SCR rate at arousal 0 and at arousal 1 (responses per minute).
        scr_amplitude_us: median SCR amplitude at arousal 0 and at arousal 1 (µS, log-normal).
        scr_amplitude_spread: log-normal sigma of the amplitudes.
        rise_s, decay_s: time constants of the bi-exponential SCR shape (s).
        noise_us: white sensor noise, standard deviation (µS).
        min_us: floor of the conductance (dry skin never reaches 0).
    """

    rate_hz: float = 128.0
    tonic_us: float = 5.0
    drift_us_per_sqrt_min: float = 0.25
    tonic_rise: float = 0.97
    tonic_tau_s: float = 750.0
    scr_rate_per_min: tuple[float, float] = (4.5, 5.7)
    scr_amplitude_us: tuple[float, float] = (0.06, 0.06)
    scr_amplitude_spread: float = 0.5
    rise_s: float = 0.75
    decay_s: float = 2.5
    noise_us: float = 0.004
    min_us: float = 0.2

    def __post_init__(self) -> None:
        if not (self.rate_hz > 0 and math.isfinite(self.rate_hz)):
            raise ConfigError(f"rate_hz must be positive, got {self.rate_hz!r}")
        if not (0 < self.rise_s < self.decay_s):
            raise ConfigError("need 0 < rise_s < decay_s for an SCR shape")
        if self.tonic_us <= 0:
            raise ConfigError(f"tonic_us must be positive, got {self.tonic_us!r}")
        if not (self.tonic_rise >= 0 and self.tonic_tau_s > 0):
            raise ConfigError(f"need tonic_rise >= 0 and tonic_tau_s > 0, got {self.tonic_rise!r}, {self.tonic_tau_s!r}")


def scr_kernel(rate_hz: float, rise_s: float = 0.75, decay_s: float = 2.5) -> npt.NDArray[np.float64]:
    """One skin conductance response of peak 1, sampled at ``rate_hz`` (shape ``(n,)``, ~8·decay)."""
    t = np.arange(int(math.ceil(8 * decay_s * rate_hz))) / rate_hz
    shape = np.exp(-t / decay_s) - np.exp(-t / rise_s)
    return shape / shape.max()


class GsrSynthesizer:
    """An endless synthetic skin-conductance stream (µS) whose arousal can change at any time.

    Args:
        config: model parameters.
        seed: random seed; the same seed gives the same samples for any chunking.
        arousal: initial arousal in [0, 1] (0 = calm, 1 = highly aroused).
    """

    #: samples generated per internal block (randomness is drawn per block, so that chunking
    #: never changes the output)
    BLOCK_S = 4.0

    def __init__(self, config: GsrSynthConfig | None = None, seed: int = 0, arousal: float = 0.3) -> None:
        self.config = config or GsrSynthConfig()
        self._rng = np.random.default_rng(seed)
        self._kernel = scr_kernel(self.config.rate_hz, self.config.rise_s, self.config.decay_s)
        self._block = max(1, int(round(self.BLOCK_S * self.config.rate_hz)))
        self._pending = np.zeros(self._kernel.size + self._block)  # phasic part not yet emitted
        self._ready = np.zeros(0)
        self._drift_state = 0.0
        self._arousal = 0.0
        self.set_arousal(arousal)
        # the level at arousal 0: the stream starts settled at tonic_us for its starting arousal
        self._rest_us = self.config.tonic_us / self._tonic_gain(self._arousal)
        self._tonic = self.config.tonic_us
        self.samples_emitted = 0

    @property
    def arousal(self) -> float:
        return self._arousal

    def set_arousal(self, arousal: float) -> None:
        """Change the arousal (applies from the next internal block, ≤ 4 s later)."""
        if not (0.0 <= float(arousal) <= 1.0):
            raise ConfigError(f"arousal must be in [0, 1], got {arousal!r}")
        self._arousal = float(arousal)

    def _tonic_gain(self, arousal: float) -> float:
        return 1.0 + self.config.tonic_rise * arousal

    def _next_block(self) -> npt.NDArray[np.float64]:
        cfg, n, rng = self.config, self._block, self._rng
        a = self._arousal
        rate_per_min = cfg.scr_rate_per_min[0] + a * (cfg.scr_rate_per_min[1] - cfg.scr_rate_per_min[0])
        median_us = cfg.scr_amplitude_us[0] * (cfg.scr_amplitude_us[1] / cfg.scr_amplitude_us[0]) ** a
        count = rng.poisson(rate_per_min * n / cfg.rate_hz / 60.0)
        onsets = rng.integers(0, n, size=count)
        amplitudes = median_us * np.exp(rng.normal(0.0, cfg.scr_amplitude_spread, size=count))
        k = self._kernel.size
        for onset, amp in zip(onsets, amplitudes, strict=True):
            self._pending[onset : onset + k] += amp * self._kernel
        phasic = self._pending[:n].copy()
        self._pending = np.concatenate([self._pending[n:], np.zeros(n)])
        # Tonic drift: a mean-reverting random walk (one pole, τ = 30 s), so the level wanders
        # like a real SCL but stays physiological over hours.
        steps = rng.normal(0.0, cfg.drift_us_per_sqrt_min * math.sqrt(n / cfg.rate_hz / 60.0))
        alpha = math.exp(-(n / cfg.rate_hz) / 30.0)
        start_drift = self._drift_state
        self._drift_state = alpha * self._drift_state + steps
        ramp = np.linspace(start_drift, self._drift_state, n, endpoint=False)
        # Tonic level: first order towards the arousal's level (continuous: a ramp within the block)
        start_tonic = self._tonic
        target = self._rest_us * self._tonic_gain(a)
        self._tonic = target + (start_tonic - target) * math.exp(-(n / cfg.rate_hz) / cfg.tonic_tau_s)
        tonic = np.linspace(start_tonic, self._tonic, n, endpoint=False)
        noise = rng.normal(0.0, cfg.noise_us, size=n)
        return np.maximum(tonic + ramp + phasic + noise, cfg.min_us)

    def read(self, n_samples: int) -> npt.NDArray[np.float64]:
        """The next ``n_samples`` samples of conductance in µS (shape ``(n_samples,)``)."""
        n_samples = int(n_samples)
        while self._ready.size < n_samples:
            self._ready = np.concatenate([self._ready, self._next_block()])
        out, self._ready = self._ready[:n_samples], self._ready[n_samples:]
        self.samples_emitted += n_samples
        return out


def synthesize_gsr(
    duration_s: float,
    arousal: float = 0.3,
    seed: int = 0,
    config: GsrSynthConfig | None = None,
) -> npt.NDArray[np.float64]:
    """A whole recording of ``duration_s`` seconds at a constant arousal: shape ``(n,)`` in µS."""
    synth = GsrSynthesizer(config, seed=seed, arousal=arousal)
    return synth.read(int(round(duration_s * synth.config.rate_hz)))


__all__ = ["GsrSynthConfig", "GsrSynthesizer", "scr_kernel", "synthesize_gsr"]
