"""Split the fresh labelled notes once, at random with a fixed seed, into tuning and held-out halves.

    python bench/qbr_signal_eval/fresh/split.py

Reads writer_a.jsonl and writer_b.jsonl (two independent writers who saw only the contract and the
labelling rules), writes tuning.jsonl and heldout.jsonl. Run once; the halves are committed.
"""

import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261201

lines = [line for name in ("writer_a.jsonl", "writer_b.jsonl")
         for line in (HERE / name).read_text(encoding="utf-8").splitlines() if line.strip()]
random.Random(SEED).shuffle(lines)
half = len(lines) // 2
(HERE / "tuning.jsonl").write_text("\n".join(sorted(lines[:half])) + "\n", encoding="utf-8")
(HERE / "heldout.jsonl").write_text("\n".join(sorted(lines[half:])) + "\n", encoding="utf-8")
print(f"{len(lines)} notes: {half} tuning, {len(lines) - half} held out (seed {SEED})")
