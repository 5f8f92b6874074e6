"""A synthetic affect-physiology model: latent arousal/valence → EEG, GSR and noisy ratings.

Nothing here claims to be real data. It exists so that every loader, trainer and exporter can be
tested on files in exactly the real formats, and so that a teacher (EEG+GSR) can beat a GSR-only
model for a known reason that distillation can transfer:

* **Latent state**: each trial has an affect state (arousal a, valence v) in [-1, 1]², one
  stimulus per quadrant in turn (as DEAP chose its videos), magnitude uniform in [0.1, 1].
* **Ratings** are noisy self-reports: ``5 + rating_gain·state + subject bias + N(0, rating_noise)``
  clipped to 1–9 (two decimals, like DEAP's continuous scales). Labels are thresholded ratings,
  so even a perfect model of the state has a ceiling below 100 %.
* **EEG** (µV, 32 channels, Geneva order): per channel a 1/f^χ background plus theta (frontal
  midline), alpha (posterior, individual alpha frequency) and beta (fronto-central) rhythms as
  narrow-band Gaussian processes; volume conduction (a Gaussian spatial kernel), common average
  reference and a 4–45 Hz band-pass (DEAP's preprocessing). The state acts *strongly* through
  band power: arousal lowers alpha and raises beta (``eeg_arousal_effect``, log-amplitude per
  unit state); valence lowers left-frontal relative to right-frontal alpha — frontal alpha
  asymmetry — and raises lateral temporal beta (``eeg_valence_effect``). Band powers also vary from trial to trial for no reason
  (``eeg_state_noise``), and subjects differ in χ, alpha frequency, band gains and effect sizes.
* **GSR** (µS → stored as Ohm) behaves like wrist EDA: a tonic level plus skin-conductance
  responses (SCRs: Bateman-like, rise ``scr_rise_s`` ≈ 0.75 s → peak after ~2 s, recovery
  ``scr_decay_s`` ≈ 4 s → back within ~10 s) and sensor noise. From the stimulus onset a trial's
  *drive* ``d = gsr_neutral_drive + gsr_arousal_effect·a − gsr_valence_effect·v + N(0,
  gsr_drive_noise)`` (clipped to 0–1) builds up over ``gsr_build_s`` (tens of seconds): the SCR
  rate goes from ``scr_rate_per_min[0]`` to ``[1]`` and the median SCR amplitude (relative to
  the tonic level) from ``scr_amplitude_rel[0]`` to ``[1]`` as d goes 0 → 1, and the tonic level
  rises by ``gsr_tonic_rise·(d − gsr_neutral_drive)`` in ln units. Subjects differ in tonic
  level (×e^N(0, 0.5)), electrode gain and responsiveness (×e^N(0, 0.4)), so a per-window z-score
  loses what a baseline-relative input keeps. GSR carries arousal less reliably than EEG (the
  drive noise, Poisson responses), and valence hardly at all.

All randomness comes from ``numpy.random.default_rng([seed, subject])``: the same seed gives the
same subject whatever else is generated.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.training.datasets.channels import GENEVA_32, scalp_positions

SYNTH_MODEL_VERSION = 2


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the synthetic model (defaults give a clear teacher > GSR-only gap).

    Attributes:
        trial_s: stimulus length per trial (s).
        rating_gain: rating change per unit latent state (1–9 scale).
        rating_noise: standard deviation of the self-report noise (rating points).
        subject_rating_bias: standard deviation of a subject's rating bias.
        eeg_rms_uv: typical EEG amplitude after preprocessing (µV).
        eeg_arousal_effect: alpha down / beta up, log-amplitude per unit arousal.
        eeg_valence_effect: frontal alpha asymmetry and temporal beta, log-amplitude per unit valence.
        eeg_state_noise: trial-to-trial band power variation unrelated to the state (log-amp sd).
        gsr_neutral_drive: the GSR drive (0–1) at a neutral state and before the stimulus.
        gsr_arousal_effect: drive change per unit latent arousal.
        gsr_valence_effect: drive change per unit of *negative* valence.
        gsr_drive_noise: trial-to-trial drive variation unrelated to the state (sd).
        gsr_build_s: time constant of the build-up after stimulus onset (s).
        gsr_tonic_us: median skin conductance level over subjects (µS).
        gsr_tonic_rise: tonic change per unit drive above neutral (ln conductance).
        scr_rate_per_min: SCR rate at drive 0 and 1 (responses per minute).
        scr_amplitude_rel: median SCR amplitude at drive 0 and 1, relative to the tonic level.
        scr_rise_s / scr_decay_s: time constants of the bi-exponential SCR shape (s).
    """

    trial_s: float = 60.0
    rating_gain: float = 3.5
    rating_noise: float = 1.0
    subject_rating_bias: float = 0.4
    eeg_rms_uv: float = 12.0
    eeg_arousal_effect: float = 0.8
    eeg_valence_effect: float = 0.8
    eeg_state_noise: float = 0.15
    gsr_neutral_drive: float = 0.4
    gsr_arousal_effect: float = 0.3
    gsr_valence_effect: float = 0.05
    gsr_drive_noise: float = 0.3
    gsr_build_s: float = 20.0
    gsr_tonic_us: float = 4.0
    gsr_tonic_rise: float = 0.15
    scr_rate_per_min: tuple[float, float] = (1.0, 10.0)
    scr_amplitude_rel: tuple[float, float] = (0.01, 0.06)
    scr_rise_s: float = 0.75
    scr_decay_s: float = 4.0

    def __post_init__(self) -> None:
        if not (self.trial_s >= 4.0 and math.isfinite(self.trial_s)):
            raise ConfigError(f"trial_s must be at least one 4 s window, got {self.trial_s!r}")
        for name in ("rating_noise", "subject_rating_bias", "eeg_rms_uv", "eeg_state_noise", "gsr_tonic_us",
                     "gsr_drive_noise", "gsr_build_s"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not (0.0 <= self.gsr_neutral_drive <= 1.0):
            raise ConfigError(f"gsr_neutral_drive must be in [0, 1], got {self.gsr_neutral_drive!r}")
        if not (0 < self.scr_rise_s < self.scr_decay_s):
            raise ConfigError("need 0 < scr_rise_s < scr_decay_s for an SCR shape")
        if min(self.scr_rate_per_min) < 0 or min(self.scr_amplitude_rel) <= 0:
            raise ConfigError("scr_rate_per_min must be >= 0 and scr_amplitude_rel > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SubjectProfile:
    """What makes one synthetic subject differ from another."""

    subject: int
    aperiodic_exponent: float
    alpha_hz: float
    band_gain: npt.NDArray[np.float64]  # (3,) theta, alpha, beta
    channel_gain: npt.NDArray[np.float64]  # (32,)
    arousal_gain: float
    valence_gain: float
    rating_bias: npt.NDArray[np.float64]  # (2,) arousal, valence
    tonic_us: float
    scr_gain: float
    gsr_noise_us: float
    eeg_scale: float


def subject_rng(seed: int, subject: int) -> np.random.Generator:
    """The random stream of one subject (independent of which other subjects are generated)."""
    return np.random.default_rng([int(seed), int(subject)])


def draw_profile(rng: np.random.Generator, subject: int) -> SubjectProfile:
    return SubjectProfile(
        subject=subject,
        aperiodic_exponent=float(rng.uniform(1.2, 1.8)),
        alpha_hz=float(np.clip(rng.normal(10.0, 0.7), 8.5, 12.0)),
        band_gain=np.exp(rng.normal(0.0, 0.3, size=3)),
        channel_gain=np.exp(rng.normal(0.0, 0.1, size=len(GENEVA_32))),
        arousal_gain=float(np.exp(rng.normal(0.0, 0.25))),
        valence_gain=float(np.exp(rng.normal(0.0, 0.25))),
        rating_bias=rng.normal(0.0, 1.0, size=2),
        tonic_us=float(np.exp(rng.normal(0.0, 0.5))),
        scr_gain=float(np.exp(rng.normal(0.0, 0.4))),
        gsr_noise_us=float(rng.uniform(0.002, 0.01)),
        eeg_scale=float(np.exp(rng.normal(0.0, 0.2))),
    )


def draw_states(rng: np.random.Generator, trials: int) -> npt.NDArray[np.float64]:
    """(trials, 2) latent [arousal, valence] in [-1, 1]: quadrants in a shuffled balanced order."""
    quadrant_signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.float64)
    order = np.concatenate([rng.permutation(4) for _ in range(-(-trials // 4))])[:trials]
    magnitude = rng.uniform(0.1, 1.0, size=(trials, 2))
    return quadrant_signs[order] * magnitude


def draw_ratings(rng: np.random.Generator, states: npt.NDArray[np.float64], profile: SubjectProfile,
                 config: SynthConfig) -> npt.NDArray[np.float64]:
    """(trials, 2) self-reported [arousal, valence] ratings, 1–9 with two decimals."""
    bias = profile.rating_bias * config.subject_rating_bias
    noisy = 5.0 + config.rating_gain * states + bias + rng.normal(0.0, config.rating_noise, size=states.shape)
    return np.clip(noisy, 1.0, 9.0).round(2)


# --- EEG -----------------------------------------------------------------------------------------

_POSITIONS = scalp_positions(GENEVA_32)
_X, _Y = _POSITIONS[:, 0], _POSITIONS[:, 1]
#: relative topographies of theta (frontal midline), alpha (posterior) and beta (fronto-central)
_TOPO = np.stack([
    np.exp(-(_X**2 + (_Y - 0.45) ** 2) / 0.25),
    0.5 + 1.0 / (1.0 + np.exp((_Y + 0.1) / 0.2)),
    0.6 + 0.4 * np.exp(-(_Y - 0.2) ** 2 / 0.3),
])
_FRONTAL = np.clip(_Y + 0.2, 0.0, 1.0)
_TEMPORAL = np.exp(-((np.abs(_X) - 0.9) ** 2) / 0.05 - _Y**2 / 0.2)  # T7/T8 and neighbours
_LATERAL = np.clip(_X / 0.5, -1.0, 1.0)  # −1 left … +1 right
_DISTANCE = np.linalg.norm(_POSITIONS[:, None, :] - _POSITIONS[None, :, :], axis=-1)
_MIXING = np.exp(-(_DISTANCE**2) / (2 * 0.25**2))
_MIXING /= np.sqrt((_MIXING**2).sum(axis=1, keepdims=True))  # keeps each channel's power
_CAR = np.eye(len(GENEVA_32)) - 1.0 / len(GENEVA_32)
_SPATIAL = _CAR @ _MIXING


def band_mask(freqs_hz: npt.NDArray[np.float64], low_hz: float, high_hz: float, edge_hz: float = 1.0) -> npt.NDArray[np.float64]:
    """Amplitude response of a smooth (raised-cosine edges of ±``edge_hz``) band-pass."""
    def ramp(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))

    return ramp((freqs_hz - (low_hz - edge_hz)) / (2 * edge_hz)) * ramp(((high_hz + edge_hz) - freqs_hz) / (2 * edge_hz))


def eeg_power_spectra(freqs_hz: npt.NDArray[np.float64], states: npt.NDArray[np.float64],
                      profile: SubjectProfile, config: SynthConfig,
                      rng: np.random.Generator | None) -> npt.NDArray[np.float64]:
    """Source power spectra ``(trials, 32, F)`` for latent ``states`` (trials, 2).

    With ``rng`` None the trial-to-trial noise is left out (the expected spectrum).
    """
    trials = states.shape[0]
    background = (1.0 + freqs_hz) ** -profile.aperiodic_exponent  # (F,)
    centres = (6.0, profile.alpha_hz, 20.0)
    widths = (1.0, 1.0, 4.0)
    heights = np.array([1.5, 8.0, 1.5]) * profile.band_gain  # relative to the background there
    a = states[:, 0][:, None] * config.eeg_arousal_effect * profile.arousal_gain  # (T, 1)
    v = states[:, 1][:, None] * config.eeg_valence_effect * profile.valence_gain
    # log-amplitude changes per (trial, channel) of each band
    log_amp = np.zeros((3, trials, len(GENEVA_32)))
    log_amp[1] = -a + v * _FRONTAL * _LATERAL  # alpha: arousal desynchronises; valence: left < right
    log_amp[2] = a + v * _TEMPORAL  # beta rises with arousal, and temporally with valence
    if rng is not None:
        log_amp += rng.normal(0.0, config.eeg_state_noise, size=(3, trials, 1))
        log_amp += rng.normal(0.0, config.eeg_state_noise / 2, size=(3, trials, len(GENEVA_32)))
    power = np.broadcast_to(background, (trials, len(GENEVA_32), freqs_hz.size)).copy()
    for band in range(3):
        peak = np.exp(-0.5 * ((freqs_hz - centres[band]) / widths[band]) ** 2)
        peak_power = heights[band] * np.interp(centres[band], freqs_hz, background) * peak  # (F,)
        gain = _TOPO[band][None, :] * np.exp(2.0 * log_amp[band])  # power = amplitude²
        power += gain[:, :, None] * peak_power[None, None, :]
    return power * (profile.channel_gain**2)[None, :, None]


def synth_eeg(rng: np.random.Generator, states: npt.NDArray[np.float64], profile: SubjectProfile,
              config: SynthConfig, samples: int, rate_hz: float,
              band_hz: tuple[float, float] | None = (4.0, 45.0), reference: bool = True) -> npt.NDArray[np.float64]:
    """EEG ``(trials, 32, samples)`` in µV, Geneva order.

    Args:
        band_hz: band-pass of the output (None: the raw 0.5 Hz … 0.4·rate band, unfiltered).
        reference: common average reference (DEAP's preprocessed data) or not (raw BioSemi).
    """
    freqs = np.fft.rfftfreq(samples, 1.0 / rate_hz).astype(np.float64, copy=False)
    band = band_mask(freqs, *band_hz) if band_hz is not None else band_mask(freqs, 1.0, 0.4 * rate_hz, 0.5)
    spatial = _SPATIAL if reference else _MIXING
    # The subject's scale comes from its expected spectrum, so trials keep their power differences.
    expected = eeg_power_spectra(freqs, np.zeros((1, 2)), profile, config, None)[0]  # (32, F)
    expected_power = 2.0 / samples**2 * ((spatial**2) @ (expected * band**2)).sum(axis=1)
    scale = config.eeg_rms_uv * profile.eeg_scale / math.sqrt(float(expected_power.mean()))
    power = eeg_power_spectra(freqs, states, profile, config, rng)
    amplitude = np.sqrt(power / 2.0) * band
    spectrum = np.empty(power.shape, dtype=np.complex128)
    spectrum.real = rng.standard_normal(power.shape) * amplitude
    spectrum.imag = rng.standard_normal(power.shape) * amplitude
    sources = np.fft.irfft(spectrum, n=samples, axis=-1)  # (trials, 32, samples)
    # volume conduction (+ CAR): a linear spatial map, applied as one (32, 32) @ (32, trials·samples)
    trials = sources.shape[0]
    mixed = spatial @ sources.transpose(1, 0, 2).reshape(len(GENEVA_32), -1)
    return np.ascontiguousarray(mixed.reshape(len(GENEVA_32), trials, samples).transpose(1, 0, 2)) * scale


# --- GSR and the other peripheral signals -------------------------------------------------------

def gsr_drive(state: npt.NDArray[np.float64], config: SynthConfig, noise: float = 0.0) -> float:
    """The GSR drive (0–1) of one trial's latent [arousal, valence] (``noise``: its random part)."""
    drive = (config.gsr_neutral_drive + config.gsr_arousal_effect * state[0]
             - config.gsr_valence_effect * state[1] + noise)
    return float(np.clip(drive, 0.0, 1.0))


def gsr_arousal_ceiling(config: SynthConfig, subjects: int = 2000, trials: int = 40, seed: int = 0) -> float:
    """The best arousal accuracy any GSR-only model can reach on this generator (0–1).

    GSR depends on a trial's latent state only through its drive (:func:`gsr_drive`, noise
    included), so a model that knew each trial's drive exactly — which no finite window of
    Poisson responses reveals — could do no better than the best threshold on it: labels are
    thresholded noisy ratings with a subject bias that an unseen subject does not reveal. This
    draws ``subjects`` × ``trials`` trials as the generator does (states, ratings, drive noise)
    and returns the accuracy of the best drive threshold on them, pooled over subjects as LOSO
    pools them. An upper bound: the window's own noise (response counts, amplitudes, sensor)
    only lowers what is reachable.
    """
    if subjects < 1 or trials < 1:
        raise ConfigError(f"need subjects and trials >= 1, got {subjects}, {trials}")
    drives, labels = [], []
    for subject in range(1, subjects + 1):
        rng = subject_rng(seed, subject)
        profile = draw_profile(rng, subject)
        states = draw_states(rng, trials)
        ratings = draw_ratings(rng, states, profile, config)
        noise = rng.normal(0.0, config.gsr_drive_noise, size=trials)
        drives.append([gsr_drive(state, config, float(n)) for state, n in zip(states, noise, strict=True)])
        labels.append(ratings[:, 0] > 5.0)
    drive, label = np.concatenate(drives), np.concatenate(labels)
    order = np.argsort(drive, kind="stable")
    drive, label = drive[order], label[order]
    # accuracy of "high above threshold" for every cut between sorted drives (ties cut together)
    cuts = np.flatnonzero(np.r_[np.diff(drive) > 0, True]) + 1
    high_above = label.sum() - np.r_[0, np.cumsum(label)][cuts]
    low_below = cuts - np.r_[0, np.cumsum(label)][cuts]
    accuracy = np.r_[label.mean(), (high_above + low_below) / drive.size]
    return float(accuracy.max())


def synth_gsr_us(rng: np.random.Generator, states: npt.NDArray[np.float64], profile: SubjectProfile,
                 config: SynthConfig, samples: int, rate_hz: float, onset_s: float = 0.0) -> npt.NDArray[np.float64]:
    """Skin conductance ``(trials, samples)`` in µS; the stimulus starts at ``onset_s``.

    Before the onset the drive is neutral; after it, it approaches the trial's drive with time
    constant ``gsr_build_s``. SCR onsets are an inhomogeneous Poisson process (drawn by
    thinning) with that drive's rate; each response is a bi-exponential of peak
    ``amplitude × tonic``.
    """
    t = np.arange(samples) / rate_hz
    build = np.where(t > onset_s, -np.expm1(-(t - onset_s) / max(config.gsr_build_s, 1e-9)), 0.0)
    kt = np.arange(int(math.ceil(8 * config.scr_decay_s * rate_hz))) / rate_hz
    kernel = np.exp(-kt / config.scr_decay_s) - np.exp(-kt / config.scr_rise_s)
    kernel /= kernel.max()
    neutral = config.gsr_neutral_drive
    rate_lo, rate_hi = config.scr_rate_per_min
    amp_lo, amp_hi = config.scr_amplitude_rel
    out = np.empty((states.shape[0], samples))
    for i, state in enumerate(states):
        drive_target = gsr_drive(state, config, float(rng.normal(0.0, config.gsr_drive_noise)))
        drive = neutral + (drive_target - neutral) * build  # (samples,)
        tonic = (config.gsr_tonic_us * profile.tonic_us * float(np.exp(rng.normal(0.0, 0.1)))
                 * np.exp(config.gsr_tonic_rise * (drive - neutral)))
        # slow tonic wander: a random walk in ln conductance (2 % per √minute)
        wander = np.cumsum(rng.normal(0.0, 0.02 * math.sqrt(1.0 / rate_hz / 60.0), samples))
        tonic = tonic * np.exp(wander)
        rate_per_s = (rate_lo + (rate_hi - rate_lo) * drive) / 60.0
        peak = max(rate_lo, rate_hi) / 60.0
        candidates = np.sort(rng.uniform(0.0, samples / rate_hz, rng.poisson(peak * samples / rate_hz)))
        index = np.minimum((candidates * rate_hz).astype(np.int64), samples - 1)
        kept = index[rng.uniform(0.0, peak, index.size) < rate_per_s[index]] if peak > 0 else index[:0]
        median = amp_lo * (amp_hi / amp_lo) ** drive[kept]
        amplitude = profile.scr_gain * median * np.exp(rng.normal(0.0, 0.5, kept.size)) * tonic[kept]
        impulses = np.zeros(samples)
        np.add.at(impulses, kept, amplitude)
        phasic = np.convolve(impulses, kernel)[:samples]
        noise = rng.normal(0.0, profile.gsr_noise_us, samples)
        out[i] = np.maximum(tonic + phasic + noise, 0.2)
    return out


def synth_peripherals(rng: np.random.Generator, trials: int, samples: int, rate_hz: float) -> dict[str, npt.NDArray[np.float64]]:
    """EOG, EMG, respiration, plethysmograph and temperature ``(trials, samples)`` each."""
    t = np.arange(samples) / rate_hz
    out: dict[str, npt.NDArray[np.float64]] = {}
    blinks = np.zeros((trials, samples))
    half = int(0.4 * rate_hz)  # a blink lasts well under a second
    for i in range(trials):
        onsets = np.cumsum(rng.exponential(4.0, size=int(samples / rate_hz / 2) + 2))
        for onset in onsets[onsets < t[-1]]:
            centre = int(onset * rate_hz)
            span = slice(max(0, centre - half), min(samples, centre + half))
            blinks[i, span] += 150.0 * np.exp(-0.5 * ((t[span] - onset) / 0.08) ** 2)
    out["vEOG"] = blinks + rng.normal(0, 5.0, size=(trials, samples))
    out["hEOG"] = np.cumsum(rng.normal(0, 1.0, size=(trials, samples)), axis=1) * 0.5
    out["hEOG"] -= out["hEOG"].mean(axis=1, keepdims=True)
    out["zEMG"] = rng.normal(0, 4.0, size=(trials, samples))
    out["tEMG"] = rng.normal(0, 4.0, size=(trials, samples))
    breath_hz = rng.uniform(0.2, 0.33, size=(trials, 1))
    out["Respiration"] = 800.0 * np.sin(2 * np.pi * breath_hz * t + rng.uniform(0, 2 * np.pi, (trials, 1)))
    out["Respiration"] += rng.normal(0, 30.0, size=(trials, samples))
    heart_hz = rng.uniform(1.0, 1.4, size=(trials, 1))
    phase = 2 * np.pi * heart_hz * t
    out["Plethysmograph"] = 1000.0 * (np.sin(phase) + 0.4 * np.sin(2 * phase - 0.8)) + rng.normal(0, 20.0, (trials, samples))
    out["Temperature"] = 32.0 + rng.normal(0, 0.5, (trials, 1)) + 0.002 * np.cumsum(rng.normal(0, 0.05, (trials, samples)), axis=1)
    return out


__all__ = [
    "SYNTH_MODEL_VERSION",
    "SubjectProfile",
    "SynthConfig",
    "band_mask",
    "draw_profile",
    "draw_ratings",
    "draw_states",
    "eeg_power_spectra",
    "gsr_arousal_ceiling",
    "gsr_drive",
    "subject_rng",
    "synth_eeg",
    "synth_gsr_us",
    "synth_peripherals",
]
