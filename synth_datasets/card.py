"""Dataset cards rendered from the templates in cards/, and the local Hub layout.

`save_hub_layout(dsdict, folder, provenance)` writes what a Hub dataset repo holds:

    folder/
      README.md                      card: YAML header (configs, tags) + body from cards/dataset_card.md
      data/<split>-00000-of-00001.parquet
      provenance.json                everything the card was written from

so `load_dataset(folder)` loads the same rows back, and pushing the folder later publishes it as is.
The provenance is plain data (see pipeline.py for what it holds); nothing secret goes into it.
Pushing it to the Hub: hub.py.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from importlib import resources
from pathlib import Path

from datasets import DatasetDict
from huggingface_hub import DatasetCard, DatasetCardData

from . import __version__

SMALL_MODEL_MARKERS = ("SmolLM2-135M",)


def template_path(name: str = "dataset_card.md") -> str:
    """Path of a card template shipped as package data (cards/ in the source tree)."""
    return str(resources.files("synth_datasets.cards") / name)


def render_template(name: str, card_data, **kwargs) -> str:
    """A card template rendered as `DatasetCard.from_template` does (card_data's fields as variables,
    `card_data` as YAML), through a loader, so a task's template can `{% extends "dataset_card.md" %}`.
    `name` is a template shipped in cards/, or the path of a plugin's own template file."""
    import jinja2

    folders = [template_path("")]
    if Path(name).is_absolute():
        folders.insert(0, str(Path(name).parent))
        name = Path(name).name
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folders))
    variables = {**card_data.to_dict(), **kwargs}
    return env.get_template(name).render(card_data=card_data.to_yaml(), **variables)


def task_template(provenance: dict) -> str:
    """The card template of the provenance's task (tasks/: `Task.card_template`); the generic one
    for a task that is not registered here."""
    from .tasks import TASKS

    kind = provenance.get("task")
    return TASKS[kind].card_template if kind in TASKS else "dataset_card.md"


def size_category(n: int) -> str:
    """The Hub's size_categories bucket for n rows.

    >>> size_category(500), size_category(20_000)
    ('n<1K', '10K<n<100K')
    """
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def card_data(dsdict: DatasetDict, provenance: dict, files: dict[str, str] | None = None) -> DatasetCardData:
    """The YAML header: configs pointing at the data files, the `synthetic` tag, task and size."""
    from .tasks import TASKS

    rows = sum(len(split) for split in dsdict.values())
    files = files or {name: f"data/{name}-*" for name in dsdict}
    configs = [{
        "config_name": "default",
        "data_files": [{"split": name, "path": path} for name, path in files.items()],
    }]
    task = provenance.get("task", "")
    source = (provenance.get("seeds") or {}).get("source_dataset")
    return DatasetCardData(
        pretty_name=provenance.get("name"),
        language=provenance.get("language", "en"),
        license=provenance.get("license"),
        task_categories=TASKS[task].hub_task_categories if task in TASKS else None,
        size_categories=size_category(rows),
        source_datasets=[source] if source else None,
        tags=["synthetic", "synth-datasets"],
        configs=configs,
    )


def render_card(dsdict: DatasetDict, provenance: dict, files: dict[str, str] | None = None,
                template: str | None = None, hub: dict | None = None) -> DatasetCard:
    """The dataset card, rendered from the task's template in cards/ and the provenance record;
    `hub` ({repo_id, revision, recipe}) when it goes to the Hub: how to load it and make it again."""
    gen = provenance.get("generator", {})
    engine = gen.get("engine", {})
    hw = gen.get("hardware") or {}
    sampling = gen.get("sampling", {})
    checks = [
        {**r, "settings": ", ".join(f"{k}={v}" for k, v in r["check"].items() if k != "name") or "-"}
        for r in provenance.get("checks", {}).get("checks", [])
    ]
    return DatasetCard(render_template(
        template or task_template(provenance),
        card_data(dsdict, provenance, files),
        pretty_name=provenance.get("name", "synthetic dataset"),
        task=provenance.get("task", "synthetic"),
        generator=gen,
        engine_line=_engine_line(gen, engine, hw),
        sampling_line=", ".join(f"{k}={v}" for k, v in sampling.items() if v not in ((), None)),
        schema_json=json.dumps(gen.get("json_schema"), indent=2),
        requests=provenance.get("requests"),
        tokens=provenance.get("tokens", {"prompt": "?", "completion": "?"}),
        generation_seconds=provenance.get("generation_seconds", "?"),
        engine_work=provenance.get("engine_work"),
        contribution=provenance.get("contribution"),
        created=provenance.get("created"),
        version=__version__,
        prompt=provenance.get("prompt", {}),
        seeds=provenance.get("seeds", {}),
        seed_count=provenance.get("seeds", {}).get("count"),
        label_rows=provenance.get("labels", []),
        checks=checks,
        parse_errors=provenance.get("parse_errors", []),
        diversity=_diversity_rows(provenance.get("checks", {}).get("diversity")),
        realism=_realism(provenance.get("checks", {}).get("realism")),
        families_not_run=_families_not_run(checks),
        small_model=any(m in str(gen.get("model")) for m in SMALL_MODEL_MARKERS),
        libraries=provenance.get("libraries") or {},
        hub=hub,
        provenance=provenance,  # the whole record: a task's template reads its own sections
    ))


def _diversity_rows(diversity: dict | None) -> dict | None:
    """Overall and per-label figures as 'before -> after' cells for the card's diversity table."""
    from .checks.semantic import FIGURES, figures_by_label, shown

    if not diversity:
        return None

    def cells(label: str, b: dict, a: dict) -> dict:
        return {"label": label, **{k: f"{shown(b[k])} -> {shown(a[k])}" for k in FIGURES}}

    rows = [cells("**all rows**", diversity["before"]["overall"], diversity["after"]["overall"])]
    rows += [cells(label, b, a) for label, b, a in figures_by_label(diversity)]
    before = diversity["before"]
    return {"encoder": before.get("encoder"), "threshold": before.get("threshold"), "rows": rows}


def _realism(realism: dict | None) -> dict | None:
    """The card's realism paragraph: the sentence, the figure before the checks, the most synthetic-looking rows."""
    from .realism import summary_line

    if not realism or not realism.get("after"):
        return None
    after, before = realism["after"], realism.get("before") or {}
    return {"line": summary_line(after), "before": before.get("auc"), "measured": after.get("auc") is not None,
            "rows": [{**row, "text": str(row["text"]).replace("`", "'").replace("\n", " ")[:160]}
                     for row in after.get("most_synthetic", [])[:5]]}


def _families_not_run(checks: list[dict]) -> list[str]:
    """The check families (built-in and plugins') of which no check ran, beyond the basic gates."""
    from .checks import FAMILY_NAMES, check_families

    ran = {r["check"]["name"] for r in checks}
    return [FAMILY_NAMES.get(family, family) for family, members in check_families().items()
            if not ran & set(members) - {"parsed", "length", "exact_dedup"}]


def save_hub_layout(dsdict: DatasetDict, folder: str | Path, provenance: dict, template: str | None = None) -> Path:
    """Write data files, README.md card and provenance.json in the layout of a Hub dataset repo
    (the card from `template`, by default the provenance's task's)."""
    folder = Path(folder)
    render_card(dsdict, provenance, template=template)  # fail on a bad provenance before touching the folder
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for old in (folder / "data").glob("*.parquet"):
        old.unlink()  # a rerun must not leave a previous run's files behind to be loaded with these
    files = {name: _write_split(split, folder / "data", name) for name, split in dsdict.items()}
    render_card(dsdict, provenance, files, template).save(folder / "README.md")
    (folder / "provenance.json").write_text(json.dumps(provenance, indent=2, ensure_ascii=False, default=str) + "\n")
    return folder


def attach_contribution(folder: str | Path, contribution: dict, name: str | None = None) -> bool:
    """Put a `compare` result into the card and provenance of a dataset folder written by
    `save_hub_layout`; False (and nothing written) when the folder holds no such dataset, or one
    made by a recipe of another `name`, or (when the contribution carries a `recipe_fingerprint`)
    by another version of the recipe."""
    from datasets import Dataset

    folder = Path(folder)
    provenance_path = folder / "provenance.json"
    parquet = sorted((folder / "data").glob("*.parquet"))
    if not provenance_path.is_file() or not parquet:
        return False
    provenance = json.loads(provenance_path.read_text())
    if name is not None and provenance.get("name") != name:
        return False
    fingerprint = contribution.get("recipe_fingerprint")
    if fingerprint is not None and provenance.get("recipe_fingerprint") != fingerprint:
        return False  # the data there was made by another version of the recipe
    provenance["contribution"] = contribution
    files = {p.name.split("-00000-of-")[0]: f"data/{p.name}" for p in parquet}
    dsdict = DatasetDict({name: Dataset.from_parquet(str(folder / path)) for name, path in files.items()})
    render_card(dsdict, provenance, files).save(folder / "README.md")
    provenance_path.write_text(json.dumps(provenance, indent=2, ensure_ascii=False, default=str) + "\n")
    return True


def _write_split(split, data_dir: Path, name: str) -> str:
    """Write one split as parquet named after its content; return its path relative to the folder.

    Why the content hash in the name: `load_dataset(folder)` on a folder whose README declares
    `configs` keeps serving its cached copy after the files change (datasets 5.2, seen here), unless
    the declared paths change too. A name that changes with the content makes a rerun load anew.
    """
    tmp = data_dir / f".{name}.parquet.tmp"
    split.to_parquet(str(tmp))
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:12]
    final = data_dir / f"{name}-00000-of-00001-{digest}.parquet"
    tmp.rename(final)
    return f"data/{final.name}"


def parse_error_counts(errors: list[str | None]) -> list[tuple[str, int]]:
    """Parse errors grouped by kind (the text before the first ':'), most common first.

    >>> parse_error_counts([None, "invalid JSON: x", "invalid JSON: y", "empty text"])
    [('invalid JSON', 2), ('empty text', 1)]
    """
    return Counter(e.split(":", 1)[0] for e in errors if e).most_common()


def _engine_line(gen: dict, engine: dict, hw: dict) -> str:
    parts = [gen.get("backend", engine.get("backend", "vllm"))]
    if gen.get("vllm_version"):
        parts.append(gen["vllm_version"])
    if hw:
        parts.append(f"{hw.get('device')}, dtype={hw.get('dtype')}")
        if hw.get("cpu_threads_bind"):
            parts.append(f"threads={hw['cpu_threads_bind']}")
    parts.append(f"seed={engine.get('seed')}")
    return ", ".join(str(p) for p in parts)
