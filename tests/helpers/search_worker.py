"""Worker for the sharded-search test: a tiny quickstart search, the hall of fame as JSON on disk."""
import json
import os
import sys

from plasticity_search.search.config import load_config
from plasticity_search.search.engine import run_search

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(out_path: str, devices: str) -> None:
    overrides = {"budget.generations": 3, "search.population": 12, "search.children": 6, "hybrid.every": 2,
                 "hybrid.steps": 1, "hybrid.population": 4,
                 "tasks.search": [{"task": "digits", "seeds": 1, "steps": 60}],
                 "tasks.select": [{"task": "digits", "seeds": 1, "steps": 60}],
                 "tasks.final": [{"task": "digits", "seeds": 2, "steps": 60}],
                 "network.hidden": [16], "hall_of_fame.select_seeds": 2, "generalization.at_end": False}
    if devices != "none":
        overrides["budget.devices"] = int(devices)
    cfg = load_config(os.path.join(ROOT, "search_spaces", "quickstart.yaml"), overrides)
    hof = run_search(cfg)
    with open(out_path, "w") as f:
        json.dump(hof.to_json(), f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
