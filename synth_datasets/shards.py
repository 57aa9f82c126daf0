"""Resumable generation: a run split into shards whose results are written as they finish.

    synthetic = generate_resumable(prompts, gen, "runs/banking77", shard_size=500)

Kill the process at any point (SIGKILL included) and call it again with the same arguments: shards
already on disk are checked and kept, the one that was in flight is generated again, and the result
has every input row exactly once (checked by `row_id`). Layout of `run_dir`:

    run.json                          what the shards were made from (fingerprint of the generator
                                      configuration, the prompts' row ids and the shard size)
    shards/00003-of-00012.parquet     rows 3*shard_size .. 4*shard_size-1, generated columns included
    journal/00004-of-00012.jsonl      the finished requests of a shard in flight, for engines that report
                                      each request as it ends (the `openai` backend): a killed run then
                                      resends only what was in flight (RequestJournal)

A shard is written to a temporary name and renamed when complete, so a kill never leaves a partial
shard under a final name; a shard that is unreadable anyway, or whose row ids are not the ones it
should hold, is reported, deleted and generated again, never mixed in. A run_dir made with another
configuration is refused unless `overwrite=True`.

With `replicas=N` (a recipe's `engine.replicas`), N processes each build their own engine (on
GPU i, or on a CPU their share of the cores: hardware.replica_envs) and take a contiguous block of
the shards still to do. A replica that dies loses only the shard it was generating: after the
replicas end, whatever is missing is generated here, and the merge below reads every shard in
order, so every row comes back exactly once in `row_id` order. Each replica records its process id
and shards in `replicas/<i>.json`. Not here: keeping the engine busy across shard boundaries (each
shard is one synchronous engine call; its slowest request leaves the engine part idle at the end).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset
from datasets.fingerprint import Hasher
from tqdm.auto import tqdm

from .generate import Generate, generate
from .locks import folder_lock

logger = logging.getLogger(__name__)


class RequestJournal:
    """The finished requests of the shard in flight, one JSON line each, appended as each request ends.

    Engines that report requests one by one (the `openai` backend's `on_done`) fill it; a run killed
    mid-shard then resends only the requests it holds no line for, so it loses at most the requests
    that were in flight. Lines are flushed as written (a process kill loses none; a machine crash
    may). A torn last line is ignored. The journal is deleted once its shard is written.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._file = None
        self._closed = False

    def load(self, row_ids) -> dict:
        """{row_id: Completion} for the journaled requests among `row_ids`."""
        from .engine import Completion

        wanted, found = set(row_ids), {}
        if not self.path.exists():
            return found
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                if entry["row_id"] in wanted:
                    found[entry["row_id"]] = Completion(**entry["completion"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill
        if found:
            logger.info("%s: %d request(s) already done, not sent again", self.path.name, len(found))
        return found

    def record(self, row_id, completion) -> None:
        """Journal one finished request; a failed one (`error` set) is not, so a rerun sends it again."""
        if completion.error is not None:
            return
        line = json.dumps({"row_id": row_id, "completion": dataclasses.asdict(completion)}) + "\n"
        with self._lock:
            if self._closed:  # the shard's call was interrupted: what still ends is in flight, not journaled
                return
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                torn = False
                if self.path.exists() and self.path.stat().st_size:
                    with open(self.path, "rb") as f:
                        f.seek(-1, os.SEEK_END)
                        torn = f.read(1) != b"\n"
                self._file = open(self.path, "a", encoding="utf-8")
                if torn:  # a kill cut the last line short: end it, so that this line stays whole
                    self._file.write("\n")
            self._file.write(line)
            self._file.flush()

    def close(self, delete: bool = False) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
                self._file = None
        if delete:
            self.path.unlink(missing_ok=True)


def _generate_shard(rows: Dataset, gen: Generate, path: Path, bar) -> None:
    """One shard: generated (resending nothing its journal holds), written atomically, journal deleted."""
    gen._journal = RequestJournal(_journal_path(path))
    try:
        done = generate(rows, gen, batch_size=len(rows), progress=bar, keep_in_memory=True, load_from_cache_file=False)
        _write_atomically(done, path)
    finally:
        gen._journal.close(delete=path.exists())
        gen._journal = None


class StaleRunError(RuntimeError):
    """The run folder holds shards made from another configuration or other prompts."""


def run_fingerprint(prompts: Dataset, gen: Generate, shard_size: int) -> str:
    """What the shards depend on: the generator's configuration, the requests' ids, the shard size.

    The ids are hashed as a plain list: hashing the column itself would hash the dataset behind it
    (its cache files' paths included), so the same prompts from another cache folder would differ.
    """
    config = gen.__getstate__()
    # options that change memory use, not outputs, are left out: a run resumed after an out-of-memory
    # error with less KV cache is the same run
    config["engine"] = config["engine"].cache_fields()
    return Hasher.hash([config, list(prompts["row_id"]), shard_size])


def generate_resumable(prompts: Dataset, gen: Generate, run_dir: str | Path, shard_size: int = 1000,
                       overwrite: bool = False, replicas: int | str | None = None, executor: str | None = None) -> Dataset:
    """Generate shard by shard into `run_dir`, reusing finished shards; return all rows in order.
    `replicas` > 1 spreads the shards still to do over that many engine processes; `executor="ray"`
    runs them as a Ray Data job instead (ray_exec.py; `replicas="auto"` then counts the cluster).
    Both default to the generator's engine config (`gen.engine.replicas`, `gen.engine.executor`).

    Input columns: `row_id` (unique per row) and what `gen` reads. Output: as `generate()`.
    """
    if "row_id" not in prompts.column_names:
        raise ValueError("resumable generation keys rows on a 'row_id' column; build prompts with a task's prompt builder")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    if len(set(prompts["row_id"])) != len(prompts):
        raise ValueError("prompts have repeated row_id values; each request needs its own id")
    replicas = getattr(gen.engine, "replicas", 1) if replicas is None else replicas
    executor = getattr(gen.engine, "executor", "local") if executor is None else executor
    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}")
    if len(prompts) == 0:
        return generate(prompts, gen)  # an empty dataset with the generated columns
    with folder_lock(Path(run_dir)):  # another process on the same run_dir: wait, then reuse its shards
        return _generate_resumable(prompts, gen, Path(run_dir), shard_size, overwrite, replicas, executor)


def _generate_resumable(prompts: Dataset, gen: Generate, run_dir: Path, shard_size: int, overwrite: bool,
                        replicas: int | str = 1, executor: str = "local") -> Dataset:
    features = gen.features(prompts.features)
    fingerprint = run_fingerprint(prompts, gen, shard_size)
    _claim(run_dir, fingerprint, len(prompts), shard_size, gen, overwrite)
    n = -(-len(prompts) // shard_size)
    paths = [run_dir / "shards" / f"{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    todo = [i for i in range(n) if not _valid_shard(paths[i], prompts, i, shard_size, features)]
    logger.info("%d of %d shards already done in %s; generating %d", n - len(todo), n, run_dir, len(todo))
    for i in set(range(n)) - set(todo):  # written, then killed before its journal was deleted
        _journal_path(paths[i]).unlink(missing_ok=True)
    if executor == "ray" and todo:
        from .ray_exec import run_on_ray

        config = replace(gen.engine, replicas=replicas, executor="ray")  # where to run, with the cluster's settings
        run_on_ray(prompts, gen, config, paths, todo, shard_size, run_dir, _write_atomically, features)
        todo = [i for i in todo if not _valid_shard(paths[i], prompts, i, shard_size, features)]
        if todo:  # the job ended without an error, so this would be a bug: say so rather than hide it
            raise RuntimeError(f"the Ray job ended with shards {todo} of {run_dir} not written")
    replicas = replace(gen.engine, replicas=replicas).replica_count()  # 'auto': one per visible GPU (group)
    if replicas > 1 and len(todo) > 1:
        run_replicas(prompts, gen, paths, todo, shard_size, min(replicas, len(todo)), run_dir)
        todo = [i for i in todo if not _valid_shard(paths[i], prompts, i, shard_size, features)]
        if todo:
            logger.warning("%d shard(s) left by replicas that stopped: generating them here", len(todo))
    todo_rows = sum(min(shard_size, len(prompts) - i * shard_size) for i in todo)
    with tqdm(total=todo_rows, desc=f"generate ({len(todo)} of {n} shards)", unit="row", disable=not todo) as bar:
        for i in todo:
            rows = prompts.select(range(i * shard_size, min((i + 1) * shard_size, len(prompts))))
            _generate_shard(rows, gen, paths[i], bar)
    # Read the shards directly (not through load_dataset's cache, which must not serve an older copy).
    result = Dataset(pa.concat_tables([pq.read_table(p) for p in paths])).cast(features)
    if result["row_id"] != prompts["row_id"]:
        raise RuntimeError(f"the shards in {run_dir} do not hold the prompts' rows in order; rerun with overwrite=True")
    return result


def run_replicas(prompts: Dataset, gen: Generate, paths: list[Path], todo: list[int], shard_size: int,
                 replicas: int, run_dir: Path, poll: float = 0.5) -> list[int]:
    """Generate the shards `todo` in `replicas` processes, each a contiguous block; the replicas'
    exit codes (a non-zero one is warned about: its unfinished shards stay to do)."""
    import multiprocessing

    from . import hardware
    from .engine import BACKENDS

    envs = hardware.replica_envs(replicas, gen.engine.gpus_per_replica())
    blocks = [todo[len(todo) * k // replicas: len(todo) * (k + 1) // replicas] for k in range(replicas)]
    module = BACKENDS.lookup(gen.engine.backend, "engine.backend").__module__  # a replica imports it to register it
    (run_dir / "replicas").mkdir(exist_ok=True)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no engine or CUDA state inherited
    procs = []
    for k, block in enumerate(blocks):
        jobs = [(i, str(paths[i])) for i in block]
        proc = context.Process(target=_replica, args=(k, prompts, gen, jobs, shard_size, envs[k], module,
                                                      str(run_dir / "replicas" / f"{k}.json")), name=f"replica-{k}")
        proc.start()
        procs.append(proc)
    rows = {i: min(shard_size, len(prompts) - i * shard_size) for i in todo}
    with tqdm(total=sum(rows.values()), desc=f"generate ({len(todo)} shards, {replicas} replicas)", unit="row") as bar:
        seen: set[int] = set()
        while any(p.is_alive() for p in procs):
            for i in todo:
                if i not in seen and paths[i].exists():
                    seen.add(i)
                    bar.update(rows[i])
            time.sleep(poll)
        for i in todo:
            if i not in seen and paths[i].exists():
                bar.update(rows[i])
    codes = []
    for k, proc in enumerate(procs):
        proc.join()
        codes.append(proc.exitcode)
        if proc.exitcode != 0:
            logger.warning("replica %d (%s) ended with exit code %s; its unfinished shards are generated again",
                           k, envs[k], proc.exitcode)
    return codes


def _replica(k: int, prompts: Dataset, gen: Generate, jobs: list[tuple[int, str]], shard_size: int, env: dict,
             module: str, record: str) -> None:
    """One replica's process: its devices, its own engine, its shards written as they finish."""
    import importlib

    os.environ.update(env)  # before any engine is built: vLLM reads its devices and threads at start
    importlib.import_module(module)  # the backend's module registers it (a plugin's, a test's)
    done = []
    for i, path in jobs:
        rows = prompts.select(range(i * shard_size, min((i + 1) * shard_size, len(prompts))))
        _generate_shard(rows, gen, Path(path), False)
        done.append(i)
        Path(record).write_text(json.dumps({"replica": k, "pid": os.getpid(), "env": env, "shards": done}))
    from .engine import release_all

    release_all()


def _claim(run_dir: Path, fingerprint: str, rows: int, shard_size: int, gen: Generate, overwrite: bool) -> None:
    """Check run.json against this run (or start a new one); refuse foreign shards unless told."""
    manifest = run_dir / "run.json"
    if manifest.exists():
        try:
            recorded = json.loads(manifest.read_text())
        except (OSError, ValueError):
            recorded = {}
        if isinstance(recorded, dict) and recorded.get("fingerprint") == fingerprint:
            return
        if not overwrite:
            raise StaleRunError(
                f"{run_dir} holds shards of another run (different generator configuration, prompts or "
                f"shard size); use a new run_dir, or pass overwrite=True to delete them and start again"
            )
        logger.warning("overwrite=True: deleting the shards of another run in %s", run_dir)
        shutil.rmtree(run_dir / "shards", ignore_errors=True)
        shutil.rmtree(run_dir / "journal", ignore_errors=True)
    (run_dir / "shards").mkdir(parents=True, exist_ok=True)
    record = {"fingerprint": fingerprint, "rows": rows, "shard_size": shard_size, "generator": gen.describe()}
    tmp = manifest.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str))
    os.replace(tmp, manifest)


def _valid_shard(path: Path, prompts: Dataset, i: int, shard_size: int, features) -> bool:
    """True when `path` reads whole, has the expected columns, and holds exactly the rows of shard i;
    a bad file is reported and deleted."""
    if not path.exists():
        return False
    expected = prompts["row_id"][i * shard_size:(i + 1) * shard_size]
    try:
        table = pq.read_table(path)  # every column, so damage anywhere in the file shows here
    except Exception as e:  # noqa: BLE001  any unreadable file is regenerated, whatever the reason
        reason = f"unreadable ({type(e).__name__}: {str(e)[:120]})"
    else:
        if set(table.column_names) != set(features):
            reason = f"has columns {sorted(table.column_names)}, not {sorted(features)}"
        elif table.column("row_id").to_pylist() == list(expected):
            return True
        else:
            reason = f"holds {table.num_rows} rows that are not the {len(expected)} it should"
    logger.warning("shard %s is %s: generating it again", path.name, reason)
    path.unlink()
    return False


def _journal_path(shard: Path) -> Path:
    """run_dir/journal/<shard name>.jsonl: the finished requests of that shard while it is in flight."""
    return shard.parent.parent / "journal" / f"{shard.stem}.jsonl"


def _write_atomically(ds: Dataset, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    ds.to_parquet(str(tmp))
    os.replace(tmp, path)  # a kill before this line leaves no file under the final name
