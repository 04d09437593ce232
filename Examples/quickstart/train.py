"""A stdlib-only training script: fits a threshold classifier on data/train.csv.

It reads the seed git-ml exports, writes metrics where git-ml asks, and saves a model file.
"""
import csv
import json
import os
import random

seed = int(os.environ.get("GIT_ML_SEED", "0"))
random.seed(seed)
rows = [(float(r["x"]), int(r["y"])) for r in csv.DictReader(open("data/train.csv"))]
random.shuffle(rows)
split = int(len(rows) * 0.8)
train, test = rows[:split], rows[split:]

best = max((sum((x > t) == bool(y) for x, y in train), t) for t in [i / 20 for i in range(21)])[1]
accuracy = sum((x > best) == bool(y) for x, y in test) / len(test)

metrics_path = os.environ.get("GIT_ML_METRICS")
if metrics_path:
    with open(metrics_path, "a") as out:
        out.write(json.dumps({"accuracy": accuracy, "threshold": best}) + "\n")
with open("model.json", "w") as out:
    json.dump({"threshold": best}, out)
print(f"seed={seed} threshold={best} accuracy={accuracy:.3f}")
