"""emotionkd.training: datasets, synthetic data, the EmotionKD teacher and student networks,
distillation with adaptive feedback, evaluation protocols and the ``emotionkd-train`` CLI.

Offline and PyTorch-based; windows its data through :mod:`emotionkd.sdk.preprocessing`, the same
code the device runs.
"""
