"""Split one fresh labelled set once, at random with a fixed seed, into tuning and held-out halves.

    python bench/qbr_signal_eval/split_set.py fresh  --seed 20261201   # round 1 (writers a, b)
    python bench/qbr_signal_eval/split_set.py fresh2 --seed 20261202   # round 2 (writers c-f)
    python bench/qbr_signal_eval/split_set.py fresh3 --seed 20261203   # round 3 (writers g-j)
    python bench/qbr_signal_eval/split_set.py fresh4 --seed 20261204   # round 4 (writers k, l, n, p)

Reads the folder's writer_*.jsonl in name order (independent writers who saw only the labelling
rules, never the detector or any other labelled note) and writes tuning.jsonl and heldout.jsonl
there. Each set was split once with the seed above; the halves are committed, so there is no need
to run it again (it reproduces them byte for byte).
"""

import argparse
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def split(folder: Path, seed: int) -> tuple[int, int]:
    writers = sorted(folder.glob("writer_*.jsonl"))
    lines = [line for path in writers for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(lines)
    half = len(lines) // 2
    (folder / "tuning.jsonl").write_text("\n".join(sorted(lines[:half])) + "\n", encoding="utf-8")
    (folder / "heldout.jsonl").write_text("\n".join(sorted(lines[half:])) + "\n", encoding="utf-8")
    return half, len(lines) - half


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the set's folder under bench/qbr_signal_eval/")
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    tuning, heldout = split(HERE / args.folder, args.seed)
    print(f"{tuning + heldout} notes: {tuning} tuning, {heldout} held out (seed {args.seed})")
