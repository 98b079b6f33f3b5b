"""Held-out simulated evaluation of a trained model, written beside it as ``<stem>.eval.json``.

Called by ``benchmarks/train_shipped.sh`` and ``benchmarks/adapt_shipped.sh``:

    python benchmarks/write_eval.py topdown/seg/weights/olfactory_bulb sims/olfactory_bulb_test

(the first argument is the checkpoint without ``.safetensors``; the second a ``topdown
simulate`` folder). Scored as ``td.seg.evaluate`` does by default (with TTA); the confusion
matrix is left out of the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import topdown as td

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python benchmarks/write_eval.py CHECKPOINT_STEM TEST_SIMULATION", file=sys.stderr)
        return 2
    stem, test = Path(args[0]), Path(args[1])
    res = td.seg.evaluate(td.seg.load(stem.with_name(stem.name + ".safetensors")), test)
    res.pop("confusion")
    stem.with_name(stem.name + ".eval.json").write_text(json.dumps(res, indent=2) + "\n")
    print(stem.name, "held-out mIoU", round(res["miou"], 3), "pixel accuracy", round(res["pixel_accuracy"], 3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
