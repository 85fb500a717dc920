"""Writes livemask/assets/alert.wav, the alert sound shipped with the package (run once; the WAV is committed).

Two short tones (880 Hz then 660 Hz, 0.15 s each with 10 ms fades) as 16-bit mono PCM at 16 kHz:
about 10 KB. Standard library only, so it runs anywhere: ``python livemask/assets/make_alert_wav.py``.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 16_000
TONES = ((880.0, 0.15), (0.0, 0.04), (660.0, 0.15))  # (Hz, seconds); 0 Hz is a pause
FADE_S = 0.01
VOLUME = 0.5


def samples() -> list[int]:
    out = []
    for freq, seconds in TONES:
        n = int(RATE * seconds)
        fade = int(RATE * FADE_S)
        for i in range(n):
            envelope = min(1.0, i / fade, (n - 1 - i) / fade) if fade else 1.0
            value = math.sin(2 * math.pi * freq * i / RATE) if freq else 0.0
            out.append(round(32767 * VOLUME * envelope * value))
    return out


def write(path: Path) -> Path:
    data = samples()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(struct.pack(f"<{len(data)}h", *data))
    return path


if __name__ == "__main__":
    print(write(Path(__file__).resolve().parent / "alert.wav"))
