"""A wearable app built on EmotionClassifier callbacks.

The app reacts to what the classifier says, the way a phone or smartwatch app would: it shows
each prediction, tells the wearer to check the electrodes when windows fail the quality gate,
and raises a "take a breath" notification when arousal stays high for several windows in a row.

The sensor is a simulated one (``sim://``) by default, or an EKD device emulated on a
pseudo-terminal (``--emulator``: the same bytes a real EKD wristband sends over USB serial), or
any source URL you give (``--source serial:///dev/ttyUSB0?protocol=ekd``). Half-way through the
simulated wearer gets excited (arousal 0.1 -> 0.95), so the notification has something to react to.

    python examples/wearable_app.py                       # 30 s of sim:// in real time
    python examples/wearable_app.py --emulator --duration 60
    python examples/wearable_app.py --source "serial:///dev/ttyUSB0?protocol=ekd"
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections import deque
from collections.abc import Iterator

from emotionkd.sdk import EmotionClassifier, Prediction


class CalmCoach:
    """The app's logic: a callback that receives every prediction (called from the stream thread).

    Args:
        high_windows: consecutive confident "high arousal" windows before a notification.
        bad_windows: consecutive windows failing the quality gate before "check the electrodes".
    """

    def __init__(self, high_windows: int = 4, bad_windows: int = 3) -> None:
        self.high_windows, self.bad_windows = high_windows, bad_windows
        self.recent: deque[Prediction] = deque(maxlen=max(high_windows, bad_windows))
        self.notifications: list[str] = []
        self.lock = threading.Lock()

    def on_prediction(self, p: Prediction) -> None:
        with self.lock:
            self.recent.append(p)
            if p.ok:
                print(f"{p.end_s:6.1f} s  arousal {p.arousal:.2f} {p.arousal_label:<4}  "
                      f"valence {p.valence:.2f} {p.valence_label}", flush=True)
            else:
                print(f"{p.end_s:6.1f} s  -- {p.quality}: {p.quality_detail}", flush=True)
            last = list(self.recent)
            if len(last) >= self.bad_windows and all(not q.ok for q in last[-self.bad_windows:]):
                self._notify(f"{p.end_s:.0f} s: check the electrodes ({p.quality})")
            if len(last) >= self.high_windows and all(q.ok and q.arousal_label == "high"
                                                      for q in last[-self.high_windows:]):
                self._notify(f"{p.end_s:.0f} s: arousal high for {self.high_windows} windows: take a breath")

    def _notify(self, text: str) -> None:
        if not self.notifications or self.notifications[-1].split(":", 1)[1] != text.split(":", 1)[1]:
            self.notifications.append(text)
            print(f"[notification] {text}", flush=True)
        self.recent.clear()  # one notification per episode


@contextlib.contextmanager
def sensor(args: argparse.Namespace) -> Iterator[tuple[str, object | None]]:
    """(source URL, an object with set_arousal or None) for the chosen sensor."""
    if args.source:
        yield args.source, None
    elif args.emulator:
        from emotionkd.firmware_bridge.emulators import EkdEmulator, EmulatorConfig

        with EkdEmulator(EmulatorConfig(rate_hz=128, seed=3, arousal=0.1), name="EKD-WRIST") as emu:
            yield f"serial://{emu.pts_path}?protocol=ekd", emu
    else:
        from emotionkd.sdk.sources.sim import SimSource

        source = SimSource(f"sim://?rate=32&arousal=0.1&seed=3&speed={args.speed:g}")
        yield source, source  # a Source object works wherever a URL does


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of signal (default 60; the bundled model reads 32 s windows)")
    parser.add_argument("--model", default=None, help="an .onnx model (default: the bundled one)")
    parser.add_argument("--emulator", action="store_true", help="an EKD device emulated on a pty")
    parser.add_argument("--source", default=None, help="any source URL (serial://, ble://, replay://, lsl://)")
    parser.add_argument("--speed", type=float, default=1.0, help="sim:// pace: 1 real time, 0 as fast as possible")
    args = parser.parse_args()

    clf = EmotionClassifier(args.model)
    if clf.trained_on_synthetic_data:
        print("note: the model was trained on synthetic data; it demonstrates the app, it measures nothing")
    coach = CalmCoach()
    with sensor(args) as (source, wearer):
        errors: list[BaseException] = []

        def on_prediction(p: Prediction) -> None:
            if wearer is not None and p.end_s >= args.duration / 2:  # the simulated wearer gets excited
                wearer.set_arousal(0.95)  # type: ignore[attr-defined]
            coach.on_prediction(p)

        handle = clf.run_in_background(source, on_prediction, duration_s=args.duration, on_error=errors.append)
        handle.join(args.duration * 3 + 30)
        handle.stop()
        if errors:
            raise SystemExit(f"the stream ended with an error: {errors[0]}")
    print(f"{len(coach.notifications)} notification(s)")


if __name__ == "__main__":
    main()
