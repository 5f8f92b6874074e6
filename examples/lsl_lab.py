"""A Lab Streaming Layer set-up: GSR in from LSL, predictions out to LSL.

In a lab the amplifier (a BioSemi, a Shimmer through its LSL app, an Empatica bridge …)
publishes skin conductance as an LSL stream, and LabRecorder records everything on one clock.
emotionkd sits in between: it reads GSR from ``lsl://NAME`` and publishes its predictions as
another LSL stream (channels arousal, valence, quality; units and labels in the metadata), so
they are recorded next to the stimuli markers and the raw signals.

This script plays all three roles on this machine:

1. a "lab amplifier" thread publishes synthetic GSR (µS, 32 Hz) as the LSL stream ``LabGSR``;
2. the classifier streams ``lsl://LabGSR`` and publishes predictions as ``emotionkd``
   (:class:`emotionkd.sdk.lsl.PredictionOutlet`), exactly what
   ``emotionkd-sdk stream --source lsl://LabGSR --lsl`` does;
3. a "LabRecorder" inlet reads the ``emotionkd`` stream back and prints what it receives.

    python examples/lsl_lab.py --duration 40

Needs the ``lsl`` extra (``pip install "emotionkd[lsl]"``); without liblsl it says so and exits 0.
"""

from __future__ import annotations

import argparse
import threading
import time

NAME = "LabGSR"
RATE_HZ = 32.0


def amplifier(pylsl, stop: threading.Event, duration_s: float) -> None:
    """Publish synthetic skin conductance in µS as an LSL stream, in real time."""
    from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, GsrSynthesizer

    info = pylsl.StreamInfo(NAME, "EDA", 1, RATE_HZ, "float32", "emotionkd-example-labgsr")
    channel = info.desc().append_child("channels").append_child("channel")
    channel.append_child_value("label", "GSR")
    channel.append_child_value("unit", "uS")  # lsl:// reads the unit from here
    outlet = pylsl.StreamOutlet(info)
    synth = GsrSynthesizer(GsrSynthConfig(rate_hz=RATE_HZ), seed=5, arousal=0.2)
    step = int(RATE_HZ / 8)
    start = pylsl.local_clock()
    sent = 0
    while not stop.is_set() and sent < (duration_s + 5) * RATE_HZ:
        if sent >= duration_s / 2 * RATE_HZ:
            synth.set_arousal(0.95)  # the participant watches something exciting
        chunk = synth.read(step)
        sent += step
        outlet.push_chunk(chunk.reshape(-1, 1).tolist(), start + (sent - 1) / RATE_HZ)
        delay = start + sent / RATE_HZ - pylsl.local_clock()
        if delay > 0:
            time.sleep(delay)


def recorder(pylsl, stop: threading.Event, received: list[list[float]]) -> None:
    """A LabRecorder stand-in: resolve the prediction stream by name and read it."""
    found = pylsl.resolve_byprop("name", "emotionkd", timeout=15)
    if not found:
        return
    inlet = pylsl.StreamInlet(found[0])
    desc = inlet.info(timeout=5).desc()
    ch = desc.child("channels").child("channel")
    labels = []
    while not ch.empty():
        labels.append(f"{ch.child_value('label')} [{ch.child_value('unit')}]")
        ch = ch.next_sibling()
    print(f"recorder: stream 'emotionkd' with channels {', '.join(labels)}; "
          f"trained on {desc.child('model').child_value('trained_on')} data", flush=True)
    while not stop.is_set():
        sample, stamp = inlet.pull_sample(timeout=0.5)
        if sample is not None:
            received.append(sample)
            print(f"recorder: t={stamp:.2f} arousal {sample[0]:.2f} valence {sample[1]:.2f} "
                  f"quality {int(sample[2])}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of GSR to classify (default 40; the bundled model reads 32 s windows)")
    parser.add_argument("--model", default=None, help="an .onnx model (default: the bundled one)")
    args = parser.parse_args()

    from emotionkd.firmware_bridge.errors import TransportError
    from emotionkd.sdk.lsl import import_pylsl

    try:
        pylsl = import_pylsl()
        pylsl.local_clock()
    except (TransportError, RuntimeError) as exc:
        print(f"skipped: LSL is not available here ({exc})")
        return
    from emotionkd.sdk import EmotionClassifier
    from emotionkd.sdk.lsl import PredictionOutlet
    from emotionkd.sdk.sources import open_source

    clf = EmotionClassifier(args.model)
    outlet = PredictionOutlet(clf.contract, name="emotionkd", hop_s=clf.hop_s)
    stop = threading.Event()
    received: list[list[float]] = []
    threads = [threading.Thread(target=amplifier, args=(pylsl, stop, args.duration), daemon=True),
               threading.Thread(target=recorder, args=(pylsl, stop, received), daemon=True)]
    for thread in threads:
        thread.start()
    published = 0
    try:
        with open_source(f"lsl://{NAME}?timeout=15") as source:
            outlet.bind_source(source)  # stamp each prediction with the LSL time of its window's end
            for prediction in clf.stream(source, duration_s=args.duration):
                outlet.write(prediction)
                published += 1
        time.sleep(1.0)  # let the recorder drain the last samples
    finally:
        stop.set()
        for thread in threads:
            thread.join(5.0)
        outlet.close()
    print(f"published {published} predictions on LSL stream 'emotionkd'; the recorder received {len(received)}")


if __name__ == "__main__":
    main()
