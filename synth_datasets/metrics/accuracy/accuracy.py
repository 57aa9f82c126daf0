"""Accuracy: the share of predictions equal to their reference (labels as integer ids).

Shipped with synth-datasets so `evaluate.load(<this folder>)` works offline; the Hub copy of this
metric is out of reach on machines without the Hub.
"""

import datasets
import evaluate


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Share of predictions that equal their reference.",
            citation="",
            inputs_description="predictions, references: lists of integer class ids of the same length",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        if not references:
            raise ValueError("accuracy of an empty evaluation set is undefined")
        hits = sum(int(p == r) for p, r in zip(predictions, references))
        return {"accuracy": hits / len(references)}
