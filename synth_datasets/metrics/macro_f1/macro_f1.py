"""Macro-F1: the unweighted mean over classes of each class's F1 (labels as integer ids).

Classes that appear in neither predictions nor references are left out; a class that appears in
only one of them counts with F1 = 0. Shipped with synth-datasets for offline `evaluate.load`.
"""

import datasets
import evaluate


class MacroF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Unweighted mean of per-class F1 over the classes present in predictions or references.",
            citation="",
            inputs_description="predictions, references: lists of integer class ids of the same length",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        if not references:
            raise ValueError("macro-F1 of an empty evaluation set is undefined")
        classes = sorted(set(predictions) | set(references))
        scores = []
        for c in classes:
            tp = sum(1 for p, r in zip(predictions, references) if p == c and r == c)
            fp = sum(1 for p, r in zip(predictions, references) if p == c and r != c)
            fn = sum(1 for p, r in zip(predictions, references) if p != c and r == c)
            scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
        return {"macro_f1": sum(scores) / len(scores)}
