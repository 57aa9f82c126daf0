"""Load a dataset folder back with `load_dataset` and show what it holds.

    python scripts/show_dataset.py outputs/banking77-synthetic-demo
"""

import argparse
from collections import Counter

from datasets import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("-n", type=int, default=5, help="rows to print")
    args = parser.parse_args()
    ds = load_dataset(args.folder)
    print(ds)
    train = ds["train"]
    print("rows per label:", dict(sorted(Counter(train["label"]).items())))
    for row in train.select(range(min(args.n, len(train)))):
        print(f"- [{row['label']}] {row['text']!r}")


if __name__ == "__main__":
    main()
