"""Spans that stay exact: finding values, edits through the offset map, noise, BIO round trips.
Known answers on fixtures, and hypothesis on random texts, spans and noise."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth_datasets.spans import (EditedText, Field, NoiseConfig, Span, SpanError, add_noise, check_spans, from_bio,
                                  locate, occurrences, to_bio)

# ---------------------------------------------------------------- finding values (known answers)


def test_occurrences_are_whole_values_not_parts_of_longer_words_or_numbers():
    text = "Invoice 12 of 2024: 2 items, total 2.50; Pari, Paris."
    assert occurrences(text, "2") == [(20, 21)]  # not in "12", "2024" or "2.50"
    assert occurrences(text, "2.50") == [(35, 39)]
    assert occurrences(text, "paris") == [(47, 52)]  # case folded, not inside "Pari,"
    assert occurrences(text, "$5") == [] and occurrences(text, "") == []
    assert occurrences("costs $1,200.00 now", "$1,200.00") == [(6, 15)]


def test_locate_labels_every_place_and_says_why_a_row_cannot_be_used():
    text = "italian food near boston, italian place open late"
    spans, problems = locate(text, [Field("Cuisine", "italian"), Field("Location", "near boston"),
                                    Field("Hours", "open late")])
    assert problems == []
    assert [(text[s.start:s.end], s.label) for s in spans] == [
        ("italian", "Cuisine"), ("near boston", "Location"), ("italian", "Cuisine"), ("open late", "Hours")]
    # a value in none of its allowed forms is missing; a form counts ("$1,200.00" for 1200.00)
    spans, problems = locate("Total: $1,200.00", [Field("total", "1200.00", ("$1,200.00", "1200 USD")),
                                                  Field("date", "2024-03-05", ("05/03/2024",))])
    assert [(s.label, s.start, s.end) for s in spans] == [("total", 7, 16)]
    assert problems == ["missing: date '2024-03-05' is not in the text in any allowed form"]
    # two fields written as the same "2": which is which cannot be told
    spans, problems = locate("Qty 2", [Field("quantity", "2"), Field("line", "2")])
    assert len(problems) == 2 and all(p.startswith("ambiguous:") for p in problems)
    # the longer value wins where a shorter one lies inside it
    spans, problems = locate("new york pizza in new york", [Field("Restaurant_Name", "new york pizza"),
                                                           Field("Location", "new york")])
    assert problems == [] and [(s.label, s.start) for s in spans] == [("Restaurant_Name", 0), ("Location", 18)]


def test_check_spans_names_each_problem():
    text = "a cheap place"
    assert check_spans(text, [Span(2, 7, "Price", "cheap")], ["cheap"]) == []
    problems = check_spans(text, [Span(1, 7, "Price", "cheap"), Span(5, 9, "X", "p pl"), Span(9, 99, "Y", "")],
                           ["cheap", "p pl", ""])
    assert any("whitespace" in p for p in problems) and any("reads" in p for p in problems)
    assert any("outside" in p for p in problems) and any("overlap" in p for p in problems)


# ---------------------------------------------------------------- the offset map


def test_edits_move_resize_or_are_refused():
    doc = EditedText("cheap thai food in boston", [Span(6, 10, "Cuisine", "thai"), Span(19, 25, "Location", "boston")])
    assert doc.replace(0, 5, "inexpensive")  # before both: both move
    assert doc.surfaces() == ["thai", "boston"] and doc.spans[0].start == 12
    assert doc.replace(12, 13, "Th")  # inside: the surface changes, the end moves
    assert doc.surfaces() == ["Thhai", "boston"] and doc.spans[1].start == 26
    assert not doc.replace(15, 18, "x")  # crosses the end of "Thhai"
    assert not doc.replace(17, 17, "!")  # touches it from outside (would glue onto the value)
    assert not doc.replace(26, 32, "")  # would leave an empty span
    assert not doc.replace(26, 27, " ")  # would start the value with a space
    assert doc.text == "inexpensive Thhai food in boston" and doc.edits == 2
    with pytest.raises(SpanError):
        EditedText("abc", [Span(0, 2, "A", "ab"), Span(1, 3, "B", "bc")])


def words_and_spans():
    """Random texts of words with some words (or runs of words) marked as spans."""
    word = st.text(alphabet="abcdefgh0O1lrnm5S.,", min_size=1, max_size=8).filter(lambda w: w.strip(".,"))

    @st.composite
    def build(draw):
        words = draw(st.lists(word, min_size=1, max_size=14))
        seps = [draw(st.sampled_from([" ", " ", "\n", "  ", "\n\n"])) for _ in words[1:]]
        text, offsets, at = "", [], 0
        for i, w in enumerate(words):
            if i:
                text += seps[i - 1]
                at += len(seps[i - 1])
            offsets.append((at, at + len(w)))
            text += w
            at += len(w)
        spans, i = [], 0
        while i < len(words):
            if draw(st.booleans()):
                run = draw(st.integers(1, 2))
                j = min(len(words), i + run) - 1
                if all("\n\n" not in seps[k] for k in range(i, j)):
                    s, e = offsets[i][0], offsets[j][1]
                    spans.append(Span(s, e, draw(st.sampled_from(["A", "B"])), text[s:e]))
                    i = j + 2
                    continue
            i += 1
        return text, spans
    return build()


edits = st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.text(alphabet="xy .", max_size=3)), max_size=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words_and_spans(), edits)
def test_any_sequence_of_edits_keeps_every_span_exact(doc_spans, edit_list):
    """An independent model of the document (text outside the spans, each span's surface) follows
    every applied edit; refused edits change nothing."""
    text, spans = doc_spans
    doc = EditedText(text, spans)
    for a, b, new in edit_list:
        n = len(doc.text)
        start = int(a * n)
        end = min(n, start + int(b * 4))
        before_text, before_spans = doc.text, list(doc.spans)
        surfaces = [before_text[s.start:s.end] for s in before_spans]
        applied = doc.replace(start, end, new)
        if not applied:
            assert doc.text == before_text and doc.spans == before_spans
            continue
        assert doc.text == before_text[:start] + new + before_text[end:]
        for old, now, surface in zip(before_spans, doc.spans, surfaces):
            assert (now.label, now.value) == (old.label, old.value)
            if old.start <= start and end <= old.end:  # the edit was inside this span
                expected = surface[:start - old.start] + new + surface[end - old.start:]
            else:
                expected = surface
            assert doc.text[now.start:now.end] == expected
        assert check_spans(doc.text, doc.spans) == []


# ---------------------------------------------------------------- noise


HEAVY = NoiseConfig(typo=0.5, ocr=0.3, case=0.3, punctuation=0.5, whitespace=0.5, line_breaks=0.5, reorder=1.0)


@settings(max_examples=300, deadline=None)
@given(words_and_spans(), st.integers(0, 2**32 - 1))
def test_noise_outside_values_leaves_every_value_exact(doc_spans, seed):
    text, spans = doc_spans
    config = NoiseConfig(**{**HEAVY.as_dict(), "inside_values": False})
    noisy, moved, _ = add_noise(text, spans, config, random.Random(seed))
    assert sorted((s.label, s.value) for s in moved) == sorted((s.label, s.value) for s in spans)
    for s in moved:
        assert noisy[s.start:s.end] == s.value
    assert check_spans(noisy, moved) == []


@settings(max_examples=300, deadline=None)
@given(words_and_spans(), st.integers(0, 2**32 - 1))
def test_noise_inside_values_keeps_spans_on_their_values_noised_form(doc_spans, seed):
    """Values may be noised too; each span then covers its noised form: non-empty, no edge
    whitespace, no overlaps, and the whitespace tokenizer's BIO tags still hold every span."""
    text, spans = doc_spans
    noisy, moved, report = add_noise(text, spans, HEAVY, random.Random(seed))
    assert len(moved) == len(spans) and check_spans(noisy, moved) == []
    tokens, tags = to_bio(noisy, moved)  # raises if a span lost its token boundaries
    joined, back = from_bio(tokens, tags)
    ordered = sorted(moved, key=lambda s: s.start)
    assert [(s.label, " ".join(noisy[s.start:s.end].split())) for s in ordered] == [(s.label, s.value) for s in back]


def test_noise_is_seeded_and_counts_what_it_did():
    text = "Invoice from Acme Ltd.\n\nTotal: $1,200.00, due 2024-03-05.\n\nThank you for your business."
    found, problems = locate(text, [Field("seller", "Acme Ltd"), Field("total", "1200.00", ("$1,200.00",)),
                                    Field("due", "2024-03-05")])
    assert problems == []
    # values keep their characters, except that each is written in another of its allowed forms
    config = NoiseConfig(typo=0.3, case=0.2, punctuation=0.5, whitespace=0.3, reorder=1.0, reformat=1.0,
                         inside_values=False)
    alternatives = {"total": ["1200 USD", "1.200,00 €"], "due": ["05/03/2024"], "seller": []}
    runs = [add_noise(text, found, config, random.Random(7), lambda s: alternatives[s.label]) for _ in range(2)]
    assert runs[0][:2] == runs[1][:2]
    noisy, moved, report = runs[0]
    assert noisy != text and report.applied and sum(report.applied.values()) > 3
    assert check_spans(noisy, moved) == []
    by_label = {s.label: noisy[s.start:s.end] for s in moved}
    assert by_label == {"seller": "Acme Ltd", "total": by_label["total"], "due": "05/03/2024"}
    assert by_label["total"] in ("1200 USD", "1.200,00 €") and report.applied.get("reorder") == 1
    with pytest.raises(ValueError, match="noise.typo"):
        NoiseConfig(typo=2)


# ---------------------------------------------------------------- BIO


def test_bio_on_a_real_mit_restaurant_row_round_trips():
    row = {"tokens": ["2", "start", "restaurants", "with", "inside", "dining"],
           "tags": ["B-Rating", "I-Rating", "O", "O", "B-Amenity", "I-Amenity"],
           "text": "2 start restaurants with inside dining",
           "entities": [{"start": 0, "end": 7, "label": "Rating"}, {"start": 25, "end": 38, "label": "Amenity"}]}
    text, spans = from_bio(row["tokens"], row["tags"])
    assert text == row["text"]
    assert [(s.start, s.end, s.label) for s in spans] == [(e["start"], e["end"], e["label"]) for e in row["entities"]]
    assert to_bio(text, spans) == (row["tokens"], row["tags"])


def test_bio_refuses_spans_off_token_boundaries_and_splits_words_when_asked():
    with pytest.raises(SpanError, match="token boundaries"):
        to_bio("italian-style food", [Span(0, 7, "Cuisine", "italian")])
    tokens, tags = to_bio("italian-style food", [Span(0, 7, "Cuisine", "italian")], tokenizer="words")
    assert tokens == ["italian", "-", "style", "food"] and tags == ["B-Cuisine", "O", "O", "O"]
    with pytest.raises(ValueError, match="unknown tokenizer"):
        to_bio("x", [], tokenizer="bpe")
    with pytest.raises(SpanError):
        from_bio(["a", "b"], ["O"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet="abc1", min_size=1, max_size=5),
                          st.sampled_from(["O", "B-X", "I-X", "B-Y", "I-Y"])), min_size=1, max_size=12))
def test_bio_round_trip_on_random_tags(pairs):
    tokens, tags = [t for t, _ in pairs], [g for _, g in pairs]
    text, spans = from_bio(tokens, tags)
    # IOB2 normal form: an I- that starts an entity reads as B-
    normal = [("B" + g[1:]) if g.startswith("I-") and (i == 0 or tags[i - 1][2:] != g[2:] or tags[i - 1] == "O") else g
              for i, g in enumerate(tags)]
    assert to_bio(text, spans) == (tokens, normal)


def test_places_are_counted_against_the_records_copies():
    # a number written more often than the record has it: which one is the value cannot be told
    _, problems = locate("1. Chair qty 3\n2. Desk qty 2", [Field("q", "3"), Field("q", "2")])
    assert problems == ["ambiguous: q '2' is written 2 times, the record has it 1"]
    # the record has quantity 3 twice (two lines), the text states it once
    _, problems = locate("Chair qty 3, desk qty 5", [Field("q", "3"), Field("q", "3"), Field("q", "5")])
    assert problems == ["missing: q '3' is written 1 time(s), the record has it 2"]
    spans, problems = locate("Chair qty 3, desk qty 3", [Field("q", "3"), Field("q", "3")])
    assert problems == [] and len(spans) == 2
    # a name said twice is one entity said twice: both labelled
    spans, problems = locate("pizza hut or another pizza hut", [Field("Restaurant_Name", "pizza hut")])
    assert problems == [] and [s.start for s in spans] == [0, 21]
    # two overlapping forms of one value make one span
    spans, problems = locate("Total: $1,200.00 USD", [Field("total", "1200.00", ("$1,200.00", "1,200.00 USD"))])
    assert problems == [] and [("total", 7, 20)] == [(s.label, s.start, s.end) for s in spans]


def test_case_is_ignored_whatever_letters_the_text_holds():
    text = "Straße café in BERLIN"  # "ß".casefold() is "ss": folding the whole text would move offsets
    assert occurrences(text, "berlin") == [(15, 21)]
    assert occurrences(text, "STRASSE") == []  # not the same letters
    assert occurrences("a-a-a", "a-a") == [(0, 3), (2, 5)]  # overlapping places are all found


def test_punctuation_noise_never_changes_a_number_inside_a_value():
    text = "Total 35.10 and 1,200.00 paid 05.03.2024; thanks."
    spans, _ = locate(text, [Field("total", "35.10"), Field("paid", "1,200.00"), Field("date", "05.03.2024")])
    for seed in range(50):
        noisy, moved, _ = add_noise(text, spans, NoiseConfig(typo=0, case=0, punctuation=1.0, whitespace=0),
                                    random.Random(seed))
        assert [noisy[s.start:s.end] for s in moved] == ["35.10", "1,200.00", "05.03.2024"]
        assert noisy.endswith("thanks")  # punctuation away from the values was dropped
