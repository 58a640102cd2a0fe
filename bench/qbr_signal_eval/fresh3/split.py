"""Split the third fresh labelled set (issue 11, round 3) once, at random with a fixed seed, into tuning and held-out halves.

    python bench/qbr_signal_eval/fresh3/split.py

Reads writer_g/h/i/j.jsonl (four independent writers who saw only the labelling rules, never the
detector or any other labelled note), writes tuning.jsonl and heldout.jsonl. Run once; the halves
are committed.
"""

import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261203
WRITERS = ("writer_g.jsonl", "writer_h.jsonl", "writer_i.jsonl", "writer_j.jsonl")

lines = [line for name in WRITERS for line in (HERE / name).read_text(encoding="utf-8").splitlines() if line.strip()]
random.Random(SEED).shuffle(lines)
half = len(lines) // 2
(HERE / "tuning.jsonl").write_text("\n".join(sorted(lines[:half])) + "\n", encoding="utf-8")
(HERE / "heldout.jsonl").write_text("\n".join(sorted(lines[half:])) + "\n", encoding="utf-8")
print(f"{len(lines)} notes: {half} tuning, {len(lines) - half} held out (seed {SEED})")
