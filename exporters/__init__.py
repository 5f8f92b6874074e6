"""emotionkd.exporters: checkpoint → ONNX with the model contract inside, parity-checked against
PyTorch, optionally INT8 (``emotionkd-export``)."""
