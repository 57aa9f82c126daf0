from datasets import Dataset

from synth_datasets.checks import ExactDuplicates, Length, Parsed, build_check, run_checks


def rows():
    return Dataset.from_dict({
        "text": ["Where is my card?", "where is my CARD", "Card lost!", None, "ok", "Where is my card?!", "A new one"],
        "parse_error": [None, None, None, "invalid JSON: x", None, None, None],
        "raw_completion": ["a", "b", "c", "{broken", "e", "f", "g"],
    })


def test_each_check_alone_with_map_and_filter():
    length = Length(min_chars=3, max_chars=100)
    annotated = length.annotate(rows())
    assert annotated["length_flag"] == [False, False, False, True, True, False, False]
    assert annotated["length_score"][3] == -1
    assert len(annotated.filter(length.keep)) == 5


def test_exact_duplicates_normalise_and_keep_first():
    dedup = ExactDuplicates()
    flags = dedup.annotate(rows())["exact_dedup_flag"]
    assert flags == [False, True, False, False, False, True, False]
    assert dedup.annotate(rows())["exact_dedup_flag"] == flags  # deterministic


def test_run_checks_reports_in_removed_kept_per_check():
    kept, report = run_checks(rows(), [Parsed(), Length(min_chars=3), ExactDuplicates()])
    got = [(r.check["name"], r.rows_in, r.removed, r.kept) for r in report.results]
    assert got == [("parsed", 7, 1, 6), ("length", 6, 1, 5), ("exact_dedup", 5, 2, 3)]
    assert kept["text"] == ["Where is my card?", "Card lost!", "A new one"]
    assert report.results[0].examples_removed == ["{broken"]
    assert "exact_dedup" in report.table()
    assert report.as_dict()["checks"][1]["check"] == {"name": "length", "min_chars": 3, "max_chars": 10000, "column": "text"}


def test_build_check_errors_name_the_allowed_values():
    import pytest

    with pytest.raises(ValueError, match="choose from"):
        build_check("lenght")
    with pytest.raises(ValueError, match="allowed: .*max_chars"):
        build_check("length", {"max_len": 3})
    with pytest.raises(ValueError, match="min_chars <= max_chars"):
        build_check("length", {"min_chars": 5, "max_chars": 2})


def test_missing_texts_are_not_duplicates_of_each_other():
    ds = Dataset.from_dict({"text": [None, None, "x", "X!"]})
    assert ExactDuplicates().annotate(ds)["exact_dedup_flag"] == [False, False, False, True]
