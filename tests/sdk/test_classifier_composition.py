"""The parts every live consumer is made of: StreamPipeline (segments → preprocessing → flags →
gate) and the predictor's assembly, tested on their own."""

from __future__ import annotations

import numpy as np
import pytest

from emotionkd.firmware_bridge.gsr_synth import synthesize_gsr
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.sdk.batch_pipeline import LockstepStreams
from emotionkd.sdk.pipeline import StreamPipeline, blocks_until
from emotionkd.sdk.prediction import MODEL_ERROR, LabelDecision, LabelRule, assemble
from emotionkd.sdk.preprocessing import PAPER_PREPROCESSING
from emotionkd.sdk.quality import QualityConfig

GSR = synthesize_gsr(30.0, arousal=0.5, seed=4)  # 128 Hz, µS
LABELS = ("low", "high")


def _pipeline() -> StreamPipeline:
    return StreamPipeline(PAPER_PREPROCESSING, 128, QualityConfig())


def test_a_stream_and_its_row_of_a_cohort_assemble_the_same_predictions() -> None:
    flags = np.zeros(GSR.size, np.uint8)
    flags[128 * 10] = SampleFlag.ELECTRODE_OFF
    single = _pipeline()
    gated = single.push_array(GSR, 128.0, "uS", flags) + single.flush()
    cohort = LockstepStreams(2, 128.0, "uS", PAPER_PREPROCESSING, 128)
    both = [cohort.push(np.stack([GSR * 1.2, GSR]), np.stack([np.zeros_like(flags), flags])), cohort.flush()]

    def answer(features: np.ndarray) -> dict[str, np.ndarray]:
        """An arousal-only model: P(high) from each window's own features."""
        p = (1 / (1 + np.exp(-features.mean(axis=-1) * 50))).astype(np.float32)
        return {"arousal": np.stack([1 - p, p], axis=1)}

    alone = [p for g in gated for p in assemble(g, answer(g.good_features()), LabelDecision(LabelRule(), LABELS))]
    labels = LabelDecision(LabelRule(), LABELS)
    row = [p for g in both for p in assemble(g, answer(g.windows.features[1][g.good[1]]), labels, stream=1)]
    assert [(p.start_s, p.quality, p.arousal, p.arousal_label) for p in alone] == \
           [(p.start_s, p.quality, p.arousal, p.arousal_label) for p in row]
    assert {p.quality for p in alone} == {"ok", "electrode_off"}
    assert {p.arousal_label for p in alone} == {"low", "high", None}
    assert all(p.valence is None and p.valence_label is None for p in alone)  # the head it lacks


def test_a_non_finite_answer_is_a_model_error_for_that_window_only() -> None:
    pipeline = _pipeline()
    gated = pipeline.push_array(GSR, 128.0, "uS", None)[0]
    p = np.full((gated.passed, 2), 0.5, np.float32)
    p[1] = np.nan
    out = assemble(gated, {"arousal": p, "valence": p}, LabelDecision(LabelRule(), LABELS))
    assert [x.quality for x in out[:3]] == ["ok", MODEL_ERROR, "ok"]
    assert out[1].arousal is None and out[1].arousal_label is None


def test_blocks_until_stops_at_the_block_that_reaches_the_duration() -> None:
    blocks = [SampleBlock(i, GSR[i:i + 64], np.zeros(64, np.uint8), 128.0) for i in range(0, GSR.size, 64)]
    taken = list(blocks_until(iter(blocks), 2.0))
    assert len(taken) == 4  # 4 × 0.5 s
    assert list(blocks_until(iter(blocks), None)) == blocks


@pytest.mark.parametrize("chunk", [1, 37, 128, 1000])
def test_pipeline_windows_do_not_depend_on_block_sizes(chunk: int) -> None:
    whole = _pipeline()
    expected = whole.push_array(GSR, 128.0, "uS", None) + whole.flush()
    pipeline = _pipeline()
    got = []
    for i in range(0, GSR.size, chunk):
        got += pipeline.push_block(SampleBlock(i, GSR[i:i + chunk], np.zeros(len(GSR[i:i + chunk]), np.uint8), 128.0))
    got += pipeline.flush()
    starts = np.concatenate([g.windows.start_s for g in got])
    np.testing.assert_array_equal(starts, np.concatenate([g.windows.start_s for g in expected]))
    np.testing.assert_allclose(np.concatenate([g.windows.features for g in got]),
                               np.concatenate([g.windows.features for g in expected]), atol=1e-5)


def test_the_source_flag_buffer_stays_bounded() -> None:
    """An hour at 128 Hz in 1 s pushes: the flags kept never exceed one window's source samples
    plus one push (flags reach windows one way, and are forgotten once no window needs them)."""
    from emotionkd.sdk.preprocessing import GsrPreprocessor

    pre = GsrPreprocessor(128.0, "uS", PAPER_PREPROCESSING, hop_samples=128)
    flags = np.zeros(128, np.uint8)
    flags[5] = SampleFlag.SATURATED
    most = 0
    for second in range(3600):
        pre.push(GSR[(second % 29) * 128:(second % 29 + 1) * 128], flags)
        most = max(most, pre._flags.held)
    assert most <= 512 + 2 * 128
