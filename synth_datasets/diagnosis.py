"""Why synthetic rows did not help: per label, what the student lost and what was wrong with the rows.

`compare` calls `label_figures` once per (draw, k) on the synthetic rows the students got, and keeps
each label's test accuracy for the real-only and blended students (`per_label_accuracy`). When a
verdict is not "added", `diagnosis_lines` names the labels that lost accuracy (mean over draws) and,
for each, which of four causes its rows show:

- off-label: at least `OFF_LABEL` of the label's synthetic rows are read as another label by a
  classifier fitted on the draw's real rows (the label check's classifier; rows it already dropped
  are not counted, so with the label check on this reads what got through);
- unlike real rows: the label's realism AUC (synth_datasets.realism) is at least `UNLIKE_AUC` and
  above the figure for all labels together;
- collapsed: the rows' semantic spread (mean pairwise embedding distance) is under `COLLAPSED`
  of the same label's real rows' spread, or at least `NEAR_DUPLICATES` of them have a near-duplicate;
- too few: fewer rows survived the checks than the blend asked for (ratio x k);
- crowded: another label's synthetic rows are off-label and read mostly as this one, so the
  student learns this label's texts under another name (the label loses though its own rows are fine).

The thresholds are fixed here, the same for every recipe, and the report states them.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Sequence

OFF_LABEL = 0.25
UNLIKE_AUC = 0.8
COLLAPSED = 0.75
NEAR_DUPLICATES = 0.3
SHOWN = 8  # labels named per k


def per_label_accuracy(predictions: Sequence, truths: Sequence, labels: Sequence[str]) -> dict[str, float | None]:
    """{label: share of the label's rows predicted right} (None for a label with no row).

    >>> per_label_accuracy(["a", "b", "b"], ["a", "a", "b"], ["a", "b", "c"])
    {'a': 0.5, 'b': 1.0, 'c': None}
    """
    right, total = Counter(), Counter()
    for p, t in zip(predictions, truths):
        total[t] += 1
        right[t] += p == t
    return {label: (round(right[label] / total[label], 4) if total[label] else None) for label in labels}


def label_figures(real_texts: Sequence[str], real_labels: Sequence[str], synthetic_texts: Sequence[str],
                  synthetic_labels: Sequence[str], labels: Sequence[str], encoder: str | None = None) -> dict[str, dict]:
    """Per label: synthetic `rows`, `off_label` share and the label they are most often `read_as`,
    `spread` (their mean pairwise distance over the real rows'), `near_duplicates` share."""
    from .checks.semantic import DEFAULT_THRESHOLD, mean_pairwise_distance, near_duplicate_share
    from .students.classifier import ClassifierConfig, train_classifier
    from .students.encoder import DEFAULT_ENCODER, get_encoder

    encoder = encoder or DEFAULT_ENCODER
    enc = get_encoder(encoder)
    real_emb, syn_emb = enc.encode(list(real_texts)), enc.encode(list(synthetic_texts))
    reader = train_classifier(list(real_texts), list(real_labels), ClassifierConfig(encoder=encoder), label_names=list(labels))
    read = reader.predict(list(synthetic_texts), embeddings=syn_emb) if len(synthetic_texts) else []
    real_rows, syn_rows = defaultdict(list), defaultdict(list)
    for i, label in enumerate(real_labels):
        real_rows[label].append(i)
    for i, label in enumerate(synthetic_labels):
        syn_rows[label].append(i)
    out = {}
    for label in labels:
        idx = syn_rows.get(label, [])
        figures: dict = {"rows": len(idx), "off_label": None, "read_as": None, "spread": None, "near_duplicates": None}
        if idx:
            others = Counter(read[i] for i in idx if read[i] != label)
            figures["off_label"] = round(sum(others.values()) / len(idx), 4)
            figures["read_as"] = others.most_common(1)[0][0] if others else None
            figures["near_duplicates"] = near_duplicate_share(syn_emb[idx], DEFAULT_THRESHOLD)
            real_spread = mean_pairwise_distance(real_emb[real_rows[label]]) if len(real_rows[label]) > 1 else None
            syn_spread = mean_pairwise_distance(syn_emb[idx]) if len(idx) > 1 else None
            if real_spread and syn_spread is not None:
                figures["spread"] = round(float(syn_spread / real_spread), 4)
        out[label] = figures
    return out


def causes(figures: dict, realism_auc: float | None, overall_auc: float | None, needed: int,
           crowded_by: Sequence[str] = ()) -> list[str]:
    """The causes (module docstring) one label's figures show, in words.

    >>> figures = {"rows": 3, "off_label": 0.5, "read_as": "b", "spread": 0.5, "near_duplicates": 0.0}
    >>> for cause in causes(figures, 0.95, 0.85, 10, ["c"]):
    ...     print(cause)
    off-label (50% read as another label, most often b)
    unlike real rows (realism AUC 0.95, all labels 0.85)
    collapsed (spread 0.50 of the real rows)
    too few (3 rows kept of 10 the blend asks for)
    crowded (rows of c read mostly as this label)
    >>> causes({"rows": 29 / 3}, None, None, 10, [])
    ['too few (9.7 rows on average kept of 10 the blend asks for)']
    """
    out = []
    if figures.get("off_label") is not None and figures["off_label"] >= OFF_LABEL:
        out.append(f"off-label ({100 * figures['off_label']:.0f}% read as another label"
                   + (f", most often {figures['read_as']})" if figures.get("read_as") else ")"))
    if realism_auc is not None and realism_auc >= UNLIKE_AUC and (overall_auc is None or realism_auc > overall_auc):
        out.append(f"unlike real rows (realism AUC {realism_auc:.2f}"
                   + (f", all labels {overall_auc:.2f})" if overall_auc is not None else ")"))
    spread, twins = figures.get("spread"), figures.get("near_duplicates")
    if (spread is not None and spread < COLLAPSED) or (twins is not None and twins >= NEAR_DUPLICATES):
        bits = []
        if spread is not None and spread < COLLAPSED:
            bits.append(f"spread {spread:.2f} of the real rows")
        if twins is not None and twins >= NEAR_DUPLICATES:
            bits.append(f"{100 * twins:.0f}% near-duplicates")
        out.append(f"collapsed ({', '.join(bits)})")
    rows = figures.get("rows", 0)
    if rows < needed:  # a mean over draws: 9.7 rows is not shown as 10 of 10
        shown = f"{rows:.0f} rows" if float(rows).is_integer() else f"{rows:.1f} rows on average"
        out.append(f"too few ({shown} kept of {needed} the blend asks for)")
    if crowded_by:
        out.append(f"crowded (rows of {', '.join(crowded_by)} read mostly as this label)")
    return out


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def diagnosis_lines(runs: list[dict], generation: list[dict], verdicts: list[dict], primary_ratio: float) -> list[str]:
    """The report's "why it did not help" paragraph, one per k whose verdict is not "helped"; [] when
    every k helped or the runs carry no per-label figures (a task without labels)."""
    from .mix import rows_for

    lines = []
    for verdict in verdicts:
        if verdict.get("helped"):
            continue
        k = verdict["k"]
        real = {r["draw"]: r["per_label"] for r in runs if r["k"] == k and r["arm"] == "real-only" and "per_label" in r}
        ratio = primary_ratio if verdict.get("outcome") != "not run" else None
        blend = {r["draw"]: r["per_label"] for r in runs if r["k"] == k and r["arm"] == "blended" and r["ratio"] == ratio
                 and "per_label" in r}
        draws = sorted(set(real) & set(blend))
        if not draws:
            continue
        records = {g["draw"]: g for g in generation if g["k"] == k and g["draw"] in draws}
        labels = list(real[draws[0]])
        change = {label: _mean([None if blend[d][label] is None or real[d][label] is None else blend[d][label] - real[d][label]
                                for d in draws]) for label in labels}
        lost = sorted((label for label in labels if change[label] is not None and change[label] < 0), key=lambda x: change[x])
        gained = sum(1 for label in labels if change[label] is not None and change[label] > 0)
        what = "the blend with every kept row" if ratio is None else f"the {ratio:g}x blend"
        head = (f"**Why it did not help at k={k}**: with {what}, {len(lost)} of {len(labels)} labels lost test accuracy and "
                f"{gained} gained (mean over {len(draws)} draw{'s' if len(draws) > 1 else ''}).")
        if not lost:
            lines += ["", head]
            continue
        needed = rows_for(ratio, k) if ratio is not None else 1
        means = {}
        for label in labels:  # each label's figures, mean over draws
            figs = [records[d]["labels"][label] for d in draws if label in records.get(d, {}).get("labels", {})]
            if figs:
                means[label] = {key: _mean([f[key] for f in figs]) for key in ("rows", "off_label", "spread", "near_duplicates")}
                read_as = Counter(f["read_as"] for f in figs if f.get("read_as")).most_common(1)
                means[label]["read_as"] = read_as[0][0] if read_as else None
        tally = Counter()
        items = []
        for label in lost[:SHOWN]:
            if label not in means:
                items.append(f"{label} {100 * change[label]:+.1f} points")
                continue
            crowded_by = [other for other, f in means.items() if other != label and f["read_as"] == label
                          and f["off_label"] is not None and f["off_label"] >= OFF_LABEL]
            auc = _mean([records[d].get("realism", {}).get("per_label", {}).get(label) for d in draws])
            overall = _mean([records[d].get("realism", {}).get("auc") for d in draws])
            found = causes(means[label], auc, overall, needed, crowded_by)
            tally.update(c.split(" (")[0] for c in found)
            items.append(f"{label} {100 * change[label]:+.1f} points: " + ("; ".join(found) if found else "none of these causes"))
        lines += ["", head, "", "The labels that lost most, and what their synthetic rows show "
                  f"(off-label: ≥ {100 * OFF_LABEL:.0f}% read as another label by a classifier fitted on the draw's real rows; "
                  f"unlike real rows: realism AUC ≥ {UNLIKE_AUC} and above all labels'; collapsed: spread under "
                  f"{COLLAPSED} of the real rows' or ≥ {100 * NEAR_DUPLICATES:.0f}% near-duplicates; too few: fewer kept rows "
                  "than the blend asks for; crowded: another label's rows are off-label and read mostly as this one):", ""]
        lines += [f"- {item}" for item in items]
        if tally:
            lines += ["", f"Of these {min(len(lost), SHOWN)} labels: " + ", ".join(f"{n} {name}" for name, n in tally.most_common()) + "."]
    return lines

