"""The shards of a resumable run generated as a Ray Data job: one engine replica per Ray actor, on
any node of a cluster (`engine.executor: ray`).

    engine: {replicas: auto, executor: ray}          # a recipe; output.run_dir is required
    generate_resumable(prompts, gen, "runs/x", replicas=8, executor="ray")   # the same from Python

How it runs (shards.py decides which shards are still to do; this module only generates them):
- The shards' rows go to Ray as Arrow tables (`ray.data.from_arrow`, one block per shard: no read
  task, nothing looked up on the Hub), and `map_batches` sends each shard to an actor of a fixed
  pool (`ActorPoolStrategy(size=replicas)`, spread over the nodes), one shard at a time per actor
  (a slow actor never sits on a queue of shards that others could take). Each actor builds its own
  engine once, through the same `Generate` transform as the in-process path, so every backend
  (vLLM, the `openai` one, a plugin's), parser and recorded row error works unchanged.
- An actor asks Ray for `gpus_per_replica` GPUs (tensor parallel; Ray sets its
  CUDA_VISIBLE_DEVICES) and a fraction of a CPU (`ray_cpus_per_replica`, 0.5): a CPU reservation
  only places actors, and one that took every CPU would leave none for Ray Data's own tasks (on a
  small machine the job then waits forever). Ray Data places actors with its default SPREAD
  strategy. The actors run at normal priority: Ray starts workers at nice 15, where the engine
  would be the first to yield the cores to Ray's own processes and the driver.
- The driver streams the results back and writes each shard into `run_dir` as it completes, so
  the run folder needs no shared storage; a killed job resumes from the shards on disk, losing
  only the shards in flight. An actor that dies is restarted by Ray and its shard sent again.
- Rows come back in whatever order and pieces they finish, a retried task's perhaps twice: the
  driver keeps each row once, puts each shard's rows in `row_id` order (ShardAssembler), and
  shards.py merges the shards in order and casts them to the features the in-process path gives
  (Ray turns `ClassLabel` into int64).
- A job that returns no rows for `ray_stall_timeout` seconds (an actor that cannot be placed, a
  hung engine) ends in an error that shows what the cluster has, never a silent hang, and the Ray
  instance it started is stopped with it; an actor that asks for more than any node has is refused
  before anything starts.
- `gen.stats` gets the actors' work: requests and tokens of the rows written, and engine seconds
  summed over the replicas (so its tokens per second is per engine, not the job's).
- `replicas/ray.json` records, per replica (node, process, devices), the rows it generated.

Ray binds the machine's own network address; the tests run a local cluster inside a network
namespace of their own so its traffic stays on loopback (tests/test_ray.py).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
from datasets import Dataset
from tqdm.auto import tqdm

from .generate import Generate

logger = logging.getLogger(__name__)

WHERE = "_replica"     # column an actor adds to its rows: node, process and devices that made them
SECONDS = "_engine_s"  # column an actor adds: its engine seconds for the shard, on the shard's first row


class RayJobError(RuntimeError):
    """A Ray generation job that cannot run (nowhere to place an actor) or stopped making progress."""


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayJobError("engine.executor: ray needs Ray Data: pip install 'synth-datasets[ray]' "
                          "(or pip install 'ray[data]')") from None
    return ray


class _Replica:
    """A Ray actor: one engine, built once, that generates whole shards."""

    def __init__(self, gen: Generate, module: str, features_schema: pa.Schema):
        import importlib

        importlib.import_module(module)  # the backend's module registers it (a plugin's, a test's)
        self.gen, self.schema = gen, features_schema
        gen._progress = False  # no engine bars in an actor: the driver shows one over all rows
        from .engine import get_engine

        get_engine(gen.engine)  # started here, once, so that the shards' engine seconds leave start-up out
        import ray

        node = ray.get_runtime_context().get_node_id()
        self.where = f"node {node[:8]} pid {os.getpid()} devices {os.environ.get('CUDA_VISIBLE_DEVICES', 'cpu')}"

    def __call__(self, table: pa.Table) -> pa.Table:
        batch = table.to_pydict()
        start = time.perf_counter()
        out = self.gen(batch)
        seconds = time.perf_counter() - start
        columns = {**batch, **out}
        table = pa.Table.from_pydict({name: columns[name] for name in self.schema.names}, schema=self.schema)
        n = table.num_rows
        table = table.append_column(WHERE, pa.array([self.where] * n, pa.string()))
        return table.append_column(SECONDS, pa.array([seconds] + [0.0] * (n - 1), pa.float64()))


def cluster_shape(ray) -> dict:
    """Alive nodes with their CPUs and GPUs, and the totals."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    shape = [{"node": n["NodeID"][:8], "cpus": n["Resources"].get("CPU", 0), "gpus": n["Resources"].get("GPU", 0)}
             for n in nodes]
    return {"nodes": shape, "cpus": sum(n["cpus"] for n in shape), "gpus": sum(n["gpus"] for n in shape)}


def replica_count(requested, gpus_per_replica: int, shape: dict, uses_accelerator: bool = True) -> int:
    """`replicas` on the cluster: 'auto' is one per `gpus_per_replica` GPUs of the cluster, or one per
    node where it has no GPU (or the backend needs none)."""
    if requested != "auto":
        return requested
    if shape["gpus"] and uses_accelerator:
        return max(1, int(sum(n["gpus"] // gpus_per_replica for n in shape["nodes"])))
    return max(1, len(shape["nodes"]))


def actor_resources(cpus: float, gpus_per_replica: int, shape: dict, uses_accelerator: bool = True) -> dict:
    """What each actor asks Ray for; an error when no node could ever hold one."""
    gpus = gpus_per_replica if shape["gpus"] and uses_accelerator else 0
    if not any(n["cpus"] >= cpus and n["gpus"] >= gpus for n in shape["nodes"]):
        have = ", ".join(f"{n['node']}: {n['cpus']:g} CPU {n['gpus']:g} GPU" for n in shape["nodes"])
        raise RayJobError(f"no node of the Ray cluster can hold a replica that needs {cpus:g} CPU and {gpus} GPU "
                          f"(nodes: {have}); lower engine.ray_cpus_per_replica or tensor_parallel_size")
    return {"num_cpus": cpus, "num_gpus": gpus}


def run_on_ray(prompts: Dataset, gen: Generate, config, paths: list[Path], todo: list[int], shard_size: int,
               run_dir: Path, write_shard, features) -> dict:
    """Generate the shards `todo` as one Ray Data job, with replicas and cluster as `config` (an
    EngineConfig) says; each shard is written with `write_shard(ds, path)` as soon as all its rows
    are back. Returns what `replicas/ray.json` records."""
    ray = _import_ray()
    from .engine import BACKENDS

    backend = BACKENDS.lookup(config.backend, "engine.backend")
    uses_accelerator = getattr(backend, "uses_accelerator", True)
    started_here = not ray.is_initialized()
    if started_here:
        address = config.ray_address or os.environ.get("RAY_ADDRESS")
        logger.info("Ray: %s", f"joining {address}" if address else "starting a Ray instance on this machine")
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                 configure_logging=False)
    try:
        shape = cluster_shape(ray)
        replicas = min(replica_count(config.replicas, config.gpus_per_replica(), shape, uses_accelerator), len(todo))
        resources = actor_resources(config.ray_cpus_per_replica, config.gpus_per_replica(), shape, uses_accelerator)
        record = _run(ray, prompts, gen, paths, todo, shard_size, replicas, resources, backend.__module__, write_shard,
                      features, config.ray_stall_timeout, shape, started_here)
    finally:
        if started_here:
            ray.shutdown()  # also stops a stalled job's actors, which would otherwise keep their resources
    (run_dir / "replicas").mkdir(exist_ok=True)
    (run_dir / "replicas" / "ray.json").write_text(json.dumps(record, indent=2))
    return record


def _run(ray, prompts, gen, paths, todo, shard_size, replicas, resources, module, write_shard, features,
         stall_timeout, shape, started_here) -> dict:
    from ray.data import DataContext

    context = DataContext.get_current()
    saved = context.enable_progress_bars, context.print_on_execution_start
    context.enable_progress_bars = False  # one bar: ours, over rows
    context.print_on_execution_start = False
    try:
        return _job(ray, prompts, gen, paths, todo, shard_size, replicas, resources, module, write_shard, features,
                    stall_timeout, shape, started_here)
    finally:
        context.enable_progress_bars, context.print_on_execution_start = saved


def _job(ray, prompts, gen, paths, todo, shard_size, replicas, resources, module, write_shard, features,
         stall_timeout, shape, started_here) -> dict:
    from ray.data import ActorPoolStrategy

    tables = [prompts.select(range(i * shard_size, min((i + 1) * shard_size, len(prompts)))).with_format("arrow")[:]
              for i in todo]
    schema = features.arrow_schema
    job = ray.data.from_arrow(tables).map_batches(
        _Replica, fn_constructor_args=(gen, module, schema), batch_size=shard_size, batch_format="pyarrow",
        compute=ActorPoolStrategy(size=replicas, max_tasks_in_flight_per_actor=1),
        runtime_env={"env_vars": {"RAY_worker_niceness": "0"}}, **resources)
    logger.info("Ray job: %d shards on %d replica(s) of %s each; cluster %s", len(todo), replicas, resources, shape)

    results: queue.Queue = queue.Queue()

    def consume():
        try:
            for batch in job.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0):
                results.put(batch)
        except BaseException as e:  # noqa: BLE001  handed to the driver thread, which raises it
            results.put(e)
        results.put(None)

    threading.Thread(target=consume, name="ray-data-consumer", daemon=True).start()
    shards = ShardAssembler(prompts["row_id"], shard_size, todo, paths, write_shard, gen)
    by_replica: Counter = Counter()
    seconds = 0.0
    with tqdm(total=shards.rows_left(), desc=f"generate ({len(todo)} shards, {replicas} Ray replicas)", unit="row") as bar:
        while True:
            try:
                batch = results.get(timeout=stall_timeout)
            except queue.Empty:
                raise RayJobError(_stalled(ray, stall_timeout, replicas, resources, shape, shards.rows_left(), started_here)) from None
            if batch is None:
                break
            if isinstance(batch, BaseException):
                raise batch
            by_replica.update(batch.column(WHERE).to_pylist())
            batch_seconds = sum(batch.column(SECONDS).to_pylist())
            seconds += batch_seconds
            gen.stats.seconds += batch_seconds
            bar.update(shards.add(batch.drop_columns([WHERE, SECONDS])))
    return {"replicas": replicas, "resources": resources, "cluster": shape, "shards": len(todo),
            "rows_by_replica": dict(by_replica), "engine_seconds": round(seconds, 3)}


class ShardAssembler:
    """Rows that come back in any order, in pieces of any size, some perhaps twice (a task Ray ran
    again): each shard is written once, when all its rows are in, in `row_id` order; a row already
    in (or of a shard already written) is dropped. What the engines did for the written rows goes
    into `gen.stats` as each shard is written."""

    def __init__(self, row_ids: list, shard_size: int, todo: list[int], paths: list[Path], write_shard, gen: Generate):
        self.position = {row_id: n for n, row_id in enumerate(row_ids)}
        self.shard_size, self.paths, self.write_shard, self.gen = shard_size, paths, write_shard, gen
        self.expected = {i: len(row_ids[i * shard_size:(i + 1) * shard_size]) for i in todo}
        self.pieces: dict[int, list[pa.Table]] = {i: [] for i in todo}
        self.seen: dict[int, set] = {i: set() for i in todo}

    def rows_left(self) -> int:
        return sum(self.expected[i] - len(self.seen[i]) for i in self.pieces)

    def add(self, table: pa.Table) -> int:
        """Take one piece; return how many of its rows were new."""
        ids = table.column("row_id").to_pylist()
        keep, shard_of = [], []
        for row_id in ids:
            i = self.position[row_id] // self.shard_size
            new = i in self.pieces and row_id not in self.seen[i]
            if new:
                self.seen[i].add(row_id)
            keep.append(new)
            shard_of.append(i)
        added = sum(keep)
        if added < len(ids):
            logger.debug("dropped %d row(s) that had already come back", len(ids) - added)
        for i in sorted({s for s, k in zip(shard_of, keep) if k}):
            self.pieces[i].append(table.filter(pa.array([k and s == i for s, k in zip(shard_of, keep)])))
            if len(self.seen[i]) == self.expected[i]:
                self._write(i, pa.concat_tables(self.pieces.pop(i)))
        return added

    def _write(self, i: int, table: pa.Table) -> None:
        order = sorted(range(table.num_rows), key=lambda k: self.position[table.column("row_id")[k].as_py()])
        table = table.take(pa.array(order, pa.int64()))
        self.write_shard(Dataset(table), self.paths[i])
        ran = [not (e or "").startswith("request failed") for e in table.column("parse_error").to_pylist()]
        stats = self.gen.stats
        stats.requests += sum(ran)
        stats.prompt_tokens += sum(t for t, r in zip(table.column("prompt_tokens").to_pylist(), ran) if r)
        stats.completion_tokens += sum(t for t, r in zip(table.column("completion_tokens").to_pylist(), ran) if r)


def _stalled(ray, timeout, replicas, resources, shape, rows_left, started_here: bool) -> str:
    try:
        available = {k: v for k, v in ray.available_resources().items() if k in ("CPU", "GPU")}
    except Exception:  # noqa: BLE001  the message is still worth giving without it
        available = "unknown"
    stopped = ("and was stopped, its actors with it" if started_here else
               "; its actors keep their resources until you call ray.shutdown() (Ray was started by the caller)")
    return (f"the Ray job returned no rows for {timeout:g} s (engine.ray_stall_timeout) {stopped}: {rows_left} row(s) "
            f"still to do on {replicas} replica(s) asking {resources} each; the cluster has {shape['cpus']:g} "
            f"CPU and {shape['gpus']:g} GPU over {len(shape['nodes'])} node(s), {available} free now. An actor Ray "
            "cannot place, or an engine that hangs, looks like this; finished shards are kept in the run folder")
