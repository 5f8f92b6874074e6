import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.sdk.resampling import StreamingResampler, _closest_fraction, rational_ratio

DEVICE_RATES_HZ = [4, 15, 32, 50, 51.2, 100, 128, 256, 512, 1000, 2048]


def _resample(x: np.ndarray, rate_in: float, lowpass: float | None = None) -> np.ndarray:
    r = StreamingResampler(rate_in, 128.0, lowpass)
    return np.concatenate([r.push(x), r.flush()])


def _amplitude_at(y: np.ndarray, freq_hz: float, rate_hz: float) -> float:
    """Amplitude of a sinusoid of known frequency by least squares."""
    t = np.arange(y.size) / rate_hz
    basis = np.stack([np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t), np.ones_like(t)], 1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(np.hypot(coef[0], coef[1]))


@pytest.mark.parametrize("rate_in", DEVICE_RATES_HZ)
def test_in_band_sine_keeps_frequency_amplitude_and_time(rate_in: float) -> None:
    freq = 0.3  # in band for every device rate, GSR-like
    duration = 80.0
    t = np.arange(int(duration * rate_in)) / rate_in
    y = _resample(3.0 + np.sin(2 * np.pi * freq * t), rate_in, lowpass=5.0)
    assert y.size == pytest.approx(duration * 128, abs=32)
    # Away from the ends, the output is the same sine on the same time axis (delay compensated).
    to = np.arange(y.size) / 128.0
    expected = 3.0 + np.sin(2 * np.pi * freq * to)
    core = slice(640, y.size - 640)
    assert np.max(np.abs(y[core] - expected[core])) < 5e-3
    assert _amplitude_at(y[core], freq, 128.0) == pytest.approx(1.0, abs=5e-3)


@pytest.mark.parametrize("rate_in", [256, 512, 1000, 2048])
def test_out_of_band_energy_is_suppressed_when_downsampling(rate_in: float) -> None:
    t = np.arange(int(30 * rate_in)) / rate_in
    # 100 Hz would alias to 28 Hz (or another in-band frequency) without anti-aliasing.
    x = np.sin(2 * np.pi * 100.0 * t) if rate_in > 200 else np.sin(2 * np.pi * 0.45 * rate_in * t)
    y = _resample(x, rate_in)
    assert np.sqrt(np.mean(y[256:-256] ** 2)) < 1e-3 * np.sqrt(0.5)  # ≥ 60 dB down


def test_images_are_suppressed_when_upsampling_a_4_hz_device() -> None:
    rate_in = 4.0
    t = np.arange(int(120 * rate_in)) / rate_in
    x = np.sin(2 * np.pi * 0.2 * t)
    y = _resample(x, rate_in)
    core = y[640:-640]
    spectrum = np.abs(np.fft.rfft(core * np.hanning(core.size)))
    freqs = np.fft.rfftfreq(core.size, 1 / 128.0)
    signal = spectrum[np.argmin(np.abs(freqs - 0.2))]
    images = spectrum[freqs > 2.0].max()  # the 4 Hz images at 3.8, 4.2, 7.8 … Hz
    assert images < 1e-3 * signal


def test_constant_in_constant_out_at_every_rate() -> None:
    for rate in DEVICE_RATES_HZ:
        y = _resample(np.full(int(20 * rate), 7.25), rate, 5.0)
        np.testing.assert_allclose(y, 7.25, rtol=0, atol=1e-9)


def test_nan_propagates_locally_and_stream_recovers() -> None:
    x = np.ones(128 * 20)
    x[1280] = np.nan
    y = _resample(x, 128.0, 5.0)
    bad = np.flatnonzero(np.isnan(y))
    assert bad.size > 0 and bad.min() > 1200 and bad.max() < 1360
    assert np.all(y[1400:] == pytest.approx(1.0))


@given(st.integers(1, 10**15), st.integers(1, 10**15), st.integers(1, 5000))
def test_closest_fraction_is_the_best_approximation_fractions_finds(num: int, den: int, max_den: int) -> None:
    from fractions import Fraction  # the reference; the SDK does without it (0.45 MB resident)

    best = Fraction(num, den).limit_denominator(max_den)
    assert _closest_fraction(num, den, max_den) == (best.numerator, best.denominator)


def test_ratio_and_errors() -> None:
    assert rational_ratio(1000, 128) == (16, 125)
    assert rational_ratio(51.2, 128) == (5, 2)
    with pytest.raises(ConfigError, match="positive"):
        rational_ratio(0, 128)
    with pytest.raises(ConfigError, match="lowpass_hz"):
        StreamingResampler(128, 128, lowpass_hz=-1)
