"""Publishing to the Hugging Face Hub: a dataset folder (written by `generate`, with `compare`'s
results when it ran) and a trained student.

    push_dataset("outputs/banking77-demo", "me/banking77-synthetic", private=True)
    push_student("outputs/student", "me/banking77-student", dataset_id="me/banking77-synthetic")

A dataset goes up in two commits:

1. the data, with `datasets`' own `DatasetDict.push_to_hub` (every split, parquet shards, and the
   `configs` / `dataset_info` YAML it writes; it merges them into a card already on the Hub);
2. the card, `provenance.json`, `recipe.yaml` and `compare/`, with `HfApi.create_commit` whose
   `parent_commit` is the head that step 1 left: the card is ours (cards/, rendered for the Hub:
   no local path, a Hub id and a "how to rerun" section) with the `configs` and `dataset_info` that
   `datasets` wrote, read back from the Hub.

A second push of a changed folder makes new commits in the same repo. Both steps are retried (a
bounded number of times) after a network error or a stale parent commit (412: someone committed
in between): the head is read again and the step redone from there; a commit whose answer was lost
is recognised by its files being at the head already, so a retry never commits twice. What is
still wrong after the retries ends in `PushError`, which says what landed and how to finish.

The token is read the usual way (`token=`, else HF_TOKEN, else the stored login) by
`huggingface_hub`; nothing here writes or logs it. Not here: the Hub's Xet storage path (tested
only with `HF_HUB_DISABLE_XET=1`, against tests/hub_server.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import DataError

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
CARD_FILES = ("README.md", "provenance.json", "recipe.yaml")


class PushError(RuntimeError):
    """A push that did not finish; the message says what landed on the Hub and how to complete it."""


@dataclass
class PushResult:
    repo_id: str
    repo_type: str
    revision: str
    commit: str  # the head after the push
    url: str
    commits: list[str] = field(default_factory=list)  # the commits this push made, oldest first
    files: list[str] = field(default_factory=list)  # the files of the last commit

    def __str__(self) -> str:
        return f"{self.url} (revision {self.revision}, commit {self.commit[:12]})"


# -- paths that travel -------------------------------------------------------------------------------
# an absolute path: "/" or "~/" then at least two components, not inside a URL or a word ("a/b", "https://x/y")
_ABS_PATH = re.compile(r"(?<![\w.:/~…-])(?:~|/)(?:/?[\w.@+-]+)(?:/[\w.@+-]+)+")


def elide(path: str) -> str:
    """An absolute path shown without the machine's layout: its folder's name and its own.

    >>> elide("/home/alice/data/banking77/train.csv")
    '…/banking77/train.csv'
    """
    p = Path(path)
    return f"…/{p.parent.name}/{p.name}" if p.parent.name else f"…/{p.name}"


def scrub_paths(text: str) -> str:
    """`text` with every absolute path (home folder included) elided to its last two components, so
    that nothing pushed tells where files were on this machine (`elide`)."""
    return _ABS_PATH.sub(lambda m: elide(m.group(0)), text)


def portable_path(value: str, base: Path, relative_to: Path) -> str:
    """A path from a recipe (relative to `base`), as a recipe kept in `relative_to` names it: relative
    to that folder, so that it resolves the same way next to the data; elided (`elide`) when the two
    share nothing but the filesystem's root, where a relative path would spell out the layout."""
    p = Path(value).expanduser()
    target = (p if p.is_absolute() else (base / p)).resolve()
    here = relative_to.resolve()
    try:
        common = Path(os.path.commonpath([target, here]))
    except ValueError:  # another drive (Windows)
        return elide(str(target))
    if common == Path(common.anchor) or common == Path.home().parent:
        return elide(str(target))
    return os.path.relpath(target, here)


RECIPE_PATHS = (("seeds", "path"), ("compare", "test_path"), ("compare", "dir"), ("output", "dir"), ("output", "run_dir"))


def portable_recipe(recipe, folder: str | Path) -> dict:
    """The recipe as run (every default filled in, the task's schema inline), as a recipe file kept
    in `folder` writes it: its paths relative to `folder`, the output folder being `folder` itself,
    a local generator model named by its folder's name. `synth-datasets generate folder/recipe.yaml`
    reruns it from there."""
    from .recipe import recipe_as_yaml

    folder = Path(folder)
    base = Path(recipe.base_dir)
    data = recipe_as_yaml(recipe)
    for section, key in RECIPE_PATHS:
        value = data.get(section, {}).get(key)
        if isinstance(value, str) and value:
            data[section][key] = portable_path(value, base, folder)
    data["output"]["dir"] = "."
    schema = data.get("task", {}).get("schema")
    if isinstance(schema, str) and (base / schema).is_file():
        data["task"]["schema"] = portable_path(schema, base, folder)
    model = data.get("generator", {}).get("model")
    if isinstance(model, str) and (Path(model).expanduser().is_absolute() or (base / model).exists()):
        data["generator"]["model"] = portable_path(model, base, folder)
    return data


def write_recipe_copy(recipe, folder: str | Path) -> Path:
    """recipe.yaml in the dataset folder: the recipe that made it (`portable_recipe`)."""
    import yaml

    path = Path(folder) / "recipe.yaml"
    text = yaml.safe_dump(portable_recipe(recipe, folder), sort_keys=False, allow_unicode=True)
    path.write_text("# The recipe that made this dataset, every default filled in; paths are relative to this file.\n"
                    "# Rerun: synth-datasets generate recipe.yaml\n" + scrub_paths(text))
    return path


def portable_provenance(provenance: dict) -> dict:
    """The provenance with every absolute path elided (`scrub_paths`, through a JSON round trip)."""
    return json.loads(scrub_paths(json.dumps(provenance, ensure_ascii=False, default=str)))


# -- reading a folder ---------------------------------------------------------------------------------
def read_dataset_folder(folder: str | Path):
    """The splits (`DatasetDict`, features as saved: ClassLabel stays) and provenance of a folder
    written by `generate`; a DataError that says what to run when it is not one."""
    from datasets import Dataset, DatasetDict

    folder = Path(folder)
    provenance_path = folder / "provenance.json"
    parquet = sorted((folder / "data").glob("*.parquet"))
    if not folder.is_dir():
        raise DataError(f"push: {str(folder)!r} is not a folder; give the output folder of `synth-datasets generate`")
    if not provenance_path.is_file() or not parquet:
        raise DataError(f"push: {str(folder)!r} holds no dataset written by synth-datasets (provenance.json and "
                        "data/*.parquet); run `synth-datasets generate <recipe>` first")
    splits: dict[str, list[str]] = {}
    for p in parquet:
        match = re.match(r"(.+?)-\d{5}-of-\d{5}", p.name)
        splits.setdefault(match.group(1) if match else p.stem, []).append(str(p))
    dsdict = DatasetDict({name: Dataset.from_parquet(files if len(files) > 1 else files[0])
                          for name, files in splits.items()})
    return dsdict, json.loads(provenance_path.read_text())


# -- the push -----------------------------------------------------------------------------------------
def _hf_api(token: str | None):
    from huggingface_hub import HfApi

    return HfApi(token=token, library_name="synth-datasets")


def full_repo_id(api, repo_id: str) -> str:
    """`name` becomes `<user>/name` (the token's user), as `create_repo` would name it."""
    if "/" in repo_id:
        return repo_id
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    try:
        return f"{api.whoami()['name']}/{repo_id}"
    except (LocalTokenNotFoundError, HfHubHTTPError) as err:
        raise PushError(f"cannot tell whose repo {repo_id!r} is ({type(err).__name__}); give it as user/name, "
                        "with a token in HF_TOKEN or from `hf auth login`") from None


RETRY_STATUS = (409, 412, 500, 502, 503, 504)


def _chain(err: BaseException):
    """`err` and the exceptions it was raised from or during (a download error wraps its network error)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _retryable(err: BaseException) -> bool:
    """A network error, or an answer that says the parent commit moved (412), a concurrent operation
    is under way (409) or the server failed (5xx), anywhere in the exception's chain."""
    import httpx2  # huggingface_hub 2.x's HTTP client

    from huggingface_hub.errors import HfHubHTTPError

    for e in _chain(err):
        if isinstance(e, (httpx2.TransportError, ConnectionError, TimeoutError)):
            return True
        response = getattr(e, "response", None)
        if isinstance(e, HfHubHTTPError) and response is not None and response.status_code in RETRY_STATUS:
            return True
    return False


def _hub_error(err: BaseException) -> bool:
    """An error of the Hub or the network (said in one line), not a bug (which keeps its traceback)."""
    import httpx2

    from huggingface_hub.errors import HfHubHTTPError

    return any(isinstance(e, (HfHubHTTPError, httpx2.HTTPError, OSError, ValueError)) for e in _chain(err))


def _with_retries(what: str, step: Callable[[int], Any], attempts: int, landed: str = "") -> Any:
    for attempt in range(1, attempts + 1):
        try:
            return step(attempt)
        except Exception as err:  # noqa: BLE001 - sorted below: retryable, the Hub's, or a bug
            if not _retryable(err) and not _hub_error(err):
                raise
            if not _retryable(err) or attempt == attempts:
                raise PushError(f"{what} failed after {attempt} attempt(s): {type(err).__name__}: {err}. {landed}".strip()) from err
            logger.warning("%s: %s (%s); retrying from the current head (attempt %d of %d)",
                           what, type(err).__name__, str(err).splitlines()[0][:200], attempt + 1, attempts)
            time.sleep(min(2 ** (attempt - 1), 4))


def _git_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _already_at_head(api, repo_id: str, repo_type: str, revision: str, files: dict[str, bytes]) -> str | None:
    """The head's sha when every file in `files` is there with these exact bytes (a commit whose
    answer was lost did land), else None."""
    head = api.repo_info(repo_id, repo_type=repo_type, revision=revision).sha
    infos = {i.path: i for i in api.get_paths_info(repo_id, list(files), repo_type=repo_type, revision=head)}
    for path, content in files.items():
        info = infos.get(path)
        if info is None or getattr(info, "size", None) != len(content):
            return None
        lfs = getattr(info, "lfs", None)
        if lfs is not None:
            if lfs.sha256 != hashlib.sha256(content).hexdigest():
                return None
        elif info.blob_id != _git_oid(content):
            return None
    return head


def _commit_since(api, repo_id: str, revision: str, before: str, marker: str) -> str | None:
    """The commit made after `before` on `revision` whose message holds `marker`, if any."""
    for commit in api.list_repo_commits(repo_id, repo_type="dataset", revision=revision):
        if commit.commit_id == before:
            return None
        if marker in (commit.message or ""):
            return commit.commit_id
    return None


def commit_files(api, repo_id: str, files: dict[str, bytes], message: str, *, repo_type: str = "dataset",
                 revision: str = "main", attempts: int = MAX_ATTEMPTS,
                 prepare: Callable[[str], dict[str, bytes]] | None = None) -> str:
    """Commit `files` (path -> bytes) on `revision` against its current head as parent; retried
    after a network error or a stale parent. `prepare(head)`, when given, rebuilds the files for
    the head they will sit on (the card reads what `datasets` wrote there). Returns the new head."""
    from huggingface_hub import CommitOperationAdd

    state: dict[str, Any] = {"files": files}

    def step(attempt: int) -> str:
        if attempt > 1 and state.get("sent"):
            landed = _already_at_head(api, repo_id, repo_type, revision, state["files"])
            if landed:
                logger.info("the commit %r had landed (its answer was lost): %s", message, landed[:12])
                return landed
        head = api.repo_info(repo_id, repo_type=repo_type, revision=revision).sha
        if prepare is not None:
            state["files"] = prepare(head)
        operations = [CommitOperationAdd(path, content) for path, content in sorted(state["files"].items())]
        state["sent"] = True
        info = api.create_commit(repo_id, operations, commit_message=message, repo_type=repo_type,
                                 revision=revision, parent_commit=head)
        return info.oid

    return _with_retries(f"commit {message!r} to {repo_id}", step, attempts)


def prepare_repo(api, repo_id: str, repo_type: str, private: bool | None, revision: str | None) -> str:
    """Create the repo (and branch) unless there; return the revision pushed to. Asked for a private
    repo, a public one that exists already is an error (pushing would publish)."""
    _with_retries(f"create {repo_type} repo {repo_id}",
                  lambda _: api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True), MAX_ATTEMPTS)
    if private:
        info = _with_retries(f"read {repo_id}", lambda _: api.repo_info(repo_id, repo_type=repo_type), MAX_ATTEMPTS)
        if not info.private:
            raise PushError(f"{repo_id} exists and is public: --private would publish into it; make it private on the "
                            "Hub (Settings) first, or push to another repo")
    if revision and revision != "main":
        _with_retries(f"create branch {revision} of {repo_id}",
                      lambda _: api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True),
                      MAX_ATTEMPTS)
    return revision or "main"


def _card_files(folder: Path, dsdict, provenance: dict, repo_id: str, revision: str, remote_readme: str | None) -> dict[str, bytes]:
    """README.md (our card, with the configs and dataset_info YAML that `datasets` wrote), the
    provenance, the recipe and compare's results, as they go up."""
    from huggingface_hub import DatasetCard

    from .card import render_card

    contribution = provenance.get("contribution") or {}
    results = Path(contribution["folder"]) if contribution.get("folder") else None
    if results is not None and not results.is_absolute():
        results = folder / results
    if results is not None and results.is_dir():  # compare's results go up beside the card that cites them
        provenance = {**provenance, "contribution": {**contribution, "folder": "compare"}}
    else:
        results = None
    provenance = portable_provenance(provenance)
    card = render_card(dsdict, provenance, hub={"repo_id": repo_id, "revision": revision,
                                                 "recipe": (folder / "recipe.yaml").is_file()})
    if remote_readme:
        remote = DatasetCard(remote_readme).data.to_dict()
        for key in ("configs", "dataset_info"):
            if key in remote:
                setattr(card.data, key, remote[key])
    files = {"README.md": str(card).encode(),
             "provenance.json": (json.dumps(provenance, indent=2, ensure_ascii=False, default=str) + "\n").encode()}
    if (folder / "recipe.yaml").is_file():
        files["recipe.yaml"] = scrub_paths((folder / "recipe.yaml").read_text()).encode()
    for p in sorted(results.rglob("*")) if results is not None else []:
        if p.is_file() and not p.name.startswith("."):
            data = p.read_bytes()
            if p.suffix in (".json", ".md", ".txt", ".csv"):
                data = scrub_paths(data.decode()).encode()
            files[f"compare/{p.relative_to(results).as_posix()}"] = data
    return files


def push_dataset(folder: str | Path, repo_id: str, *, private: bool | None = None, revision: str | None = None,
                 token: str | None = None, attempts: int = MAX_ATTEMPTS, progress: bool = True) -> PushResult:
    """Push a dataset folder written by `generate` (see the module docstring). `private` applies
    when the repo is created (None: the Hub's default, public); `revision` is a branch, created
    from main when missing. Returns where it went."""
    from huggingface_hub import hf_hub_download

    folder = Path(folder)
    dsdict, provenance = read_dataset_folder(folder)
    api = _hf_api(token)
    repo_id = full_repo_id(api, repo_id)
    revision = prepare_repo(api, repo_id, "dataset", private, revision)
    commits: list[str] = []
    marker = f"synth-datasets push {uuid.uuid4().hex[:16]}"  # finds this push's data commit after a lost answer
    state: dict[str, str] = {}
    with _progress_bars(progress):
        def push_data(attempt: int) -> str:
            if attempt > 1 and "before" in state:
                landed = _commit_since(api, repo_id, revision, state["before"], marker)
                if landed:
                    logger.info("the data commit had landed (its answer was lost): %s", landed[:12])
                    return landed
            state["before"] = api.repo_info(repo_id, repo_type="dataset", revision=revision).sha
            info = dsdict.push_to_hub(repo_id, revision=revision, private=private, token=token,
                                      commit_message=f"Upload {provenance.get('name', 'data')} (synth-datasets)",
                                      commit_description=f"rows: {', '.join(f'{k}={len(v)}' for k, v in dsdict.items())}"
                                                         f"\n\n{marker}")
            return info.oid

        commits.append(_with_retries(f"push the data of {folder} to {repo_id}", push_data, attempts))
        logger.info("data pushed to %s@%s: commit %s", repo_id, revision, commits[-1][:12])

        def prepare(head: str) -> dict[str, bytes]:
            readme = Path(hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=head, token=token)).read_text()
            return _card_files(folder, dsdict, provenance, repo_id, revision, readme)

        landed = (f"The data landed in {repo_id}@{revision} (commit {commits[-1][:12]}) with the card that `datasets` "
                  f"writes; run `synth-datasets push {folder} {repo_id}` again to put the full card on it.")
        try:
            commits.append(commit_files(api, repo_id, {}, "Card, provenance and recipe (synth-datasets)",
                                        revision=revision, attempts=attempts, prepare=prepare))
        except PushError as err:
            raise PushError(f"{err} {landed}") from err.__cause__
    head = _with_retries(f"read {repo_id}", lambda _: api.repo_info(repo_id, repo_type="dataset", revision=revision), attempts)
    files = sorted(f.rfilename for f in head.siblings or [])
    url = f"{api.endpoint}/datasets/{repo_id}" + (f"/tree/{revision}" if revision != "main" else "")
    return PushResult(repo_id, "dataset", revision, head.sha, url, commits, files)


class _progress_bars:
    """Upload progress bars of huggingface_hub and datasets on (the CLI turns them off by default)."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self):
        if self.on:
            import datasets
            from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars

            self.hub_off, self.ds_off = are_progress_bars_disabled(), not datasets.is_progress_bar_enabled()
            enable_progress_bars()
            datasets.enable_progress_bars()
        return self

    def __exit__(self, *exc):
        if self.on:
            import datasets
            from huggingface_hub.utils import disable_progress_bars

            if self.hub_off:
                disable_progress_bars()
            if self.ds_off:
                datasets.disable_progress_bars()


# -- students ------------------------------------------------------------------------------------------
STUDENT_SUFFIXES = (".safetensors", ".json", ".txt", ".model", ".jinja", ".md")  # weights, configs, tokenizers


def push_student(folder: str | Path, repo_id: str, *, dataset_id: str | None = None, private: bool | None = None,
                 revision: str | None = None, token: str | None = None, attempts: int = MAX_ATTEMPTS) -> PushResult:
    """Push a student folder written by scripts/train_student.py (safetensors weights or adapter,
    config, tokenizer, results.json) with its model card rewritten for the Hub: the training data
    named by Hub id (`dataset_id`, or the data's own id when it came from the Hub), never by a
    local path. A folder holding pickled weights (.bin, .pt, .pkl) is refused."""
    from .students.script import write_model_card

    folder = Path(folder)
    results = folder / "results.json"
    if not results.is_file():
        raise DataError(f"push: {str(folder)!r} holds no student (results.json); train one with scripts/train_student.py")
    other = sorted(p.name for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and p.suffix not in STUDENT_SUFFIXES)
    if other:
        raise DataError(f"push: {folder} holds files that are not safetensors weights, configs or tokenizer files "
                        f"({', '.join(other)}); a pickled file is never pushed: move them out of the folder")
    if dataset_id is not None and not is_hub_id(dataset_id):
        raise DataError(f"push: --dataset-id {dataset_id!r} is not a Hub id (user/name): push the data first "
                        "(`synth-datasets push <folder> <user/name>`) and give that id")
    summary = hub_summary(json.loads(results.read_text()), dataset_id)
    api = _hf_api(token)
    repo_id = full_repo_id(api, repo_id)
    summary["repo_id"] = repo_id
    revision = prepare_repo(api, repo_id, "model", private, revision)
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name not in ("README.md", "results.json") and not p.name.startswith(".")}
    if "adapter_config.json" in files:  # PEFT names the base model; a local folder means nothing on the Hub
        config = json.loads(files["adapter_config.json"])
        base = str(config.get("base_model_name_or_path") or "")
        if base and not is_hub_id(base):
            hub_base = EMBEDDED_BASES.get(Path(base).name)
            if hub_base is None:
                raise DataError(f"push: the adapter's base model is a local folder ({Path(base).name}), which nobody can "
                                "load from the Hub; train on a Hub model (--model_name_or_path org/name) to publish it")
            summary["base_model"] = hub_base
            summary["base_note"] = (f"Trained on synth-datasets' embedded copy of {hub_base} (a quantized GGUF, "
                                    "de-quantized), whose weights differ slightly from the Hub's; load it on that copy "
                                    "(`synth_datasets.models.resolve_model`) to reproduce the scores exactly.")
            config["base_model_name_or_path"] = hub_base
            files["adapter_config.json"] = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()
    files = {path: scrub_paths(data.decode()).encode() if path.endswith(".json") else data for path, data in files.items()}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        card = write_model_card(Path(tmp), summary).read_text()
    files["README.md"] = card.encode()
    files["results.json"] = (json.dumps(summary, indent=2) + "\n").encode()
    with _progress_bars(True):
        commit = commit_files(api, repo_id, files, "Upload student (synth-datasets)", repo_type="model",
                              revision=revision, attempts=attempts)
    url = f"{api.endpoint}/{repo_id}" + (f"/tree/{revision}" if revision != "main" else "")
    return PushResult(repo_id, "model", revision, commit, url, [commit], sorted(files))


# the embedded models' converted folders (models.py) and the Hub ids they were converted from
EMBEDDED_BASES = {"SmolLM2-135M-Instruct": "HuggingFaceTB/SmolLM2-135M-Instruct", "gemma-3-270m": "google/gemma-3-270m"}


def is_hub_id(value: str | None) -> bool:
    """`value` names a Hub repo (`ns/name`) and not a local file or folder."""
    if not value or Path(value).expanduser().exists() or value.startswith((".", "/", "~")):
        return False
    parts = value.split("/")
    return len(parts) == 2 and all(parts)


def hub_summary(summary: dict, dataset_id: str | None) -> dict:
    """The student's summary as the Hub card shows it: its data by Hub id (or named as a local file
    that was not published), no local path anywhere."""
    out = json.loads(json.dumps(summary))
    data = out.get("data", {})
    for key in ("synthetic", "real", "test"):
        value = data.get(key)
        if key == "synthetic" and dataset_id:
            data[key] = dataset_id
        elif value and not is_hub_id(value):
            data[key] = f"a local file ({Path(value).name}), not on the Hub"
    base = str(out.get("base_model") or "")
    if base and not is_hub_id(base):
        out["base_model"] = EMBEDDED_BASES.get(Path(base).name, f"a local model ({Path(base).name})")
    out["dataset_id"] = dataset_id or (data.get("synthetic") if is_hub_id(data.get("synthetic")) else None)
    return json.loads(scrub_paths(json.dumps(out)))
