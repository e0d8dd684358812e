"""Run one model's evaluation: check its endpoint, run lm-evaluation-harness, keep the results, push the scores.

The CronJob of components/evaluation.py runs this in the image evaluation/Dockerfile builds. A model
scaled to zero on purpose is skipped (status "skipped"), never failed: its alerts stay quiet.
Standard library and boto3 only, besides lm_eval itself.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3

STATUS = {"succeeded": 1, "failed": 0, "skipped": 2}


def healthy(base_url: str, timeout: float = 10) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def lm_eval_command(args: argparse.Namespace, output: Path) -> list[str]:
    # lm-evaluation-harness 0.4.13 lm_eval/models/openai_completions.py (LocalCompletionsAPI) and
    # api_models.py (TemplateAPI): the model's own tokenizer from the hub, four requests at a time.
    model_args = ",".join([f"model={args.served_name}", f"base_url={args.base_url}/v1/completions",
                           f"tokenizer={args.tokenizer}", "tokenizer_backend=huggingface", "num_concurrent=4",
                           "max_retries=3"])
    return ["lm_eval", "--model", "local-completions", "--model_args", model_args, "--tasks", args.tasks,
            "--num_fewshot", str(args.few_shot), "--limit", str(args.limit), "--output_path", str(output)]


def scores(results: dict) -> dict[tuple[str, str], float]:
    """(task, metric) -> value for every numeric, non-stderr metric of lm_eval's results JSON."""
    found = {}
    for task, metrics in (results.get("results") or {}).items():
        for key, value in metrics.items():
            metric = key.split(",", 1)[0]
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not metric.endswith("_stderr"):
                found[(task, key.replace(",", "_").replace("-", "_"))] = float(value)
    return found


def metrics_text(model: str, status: str, duration: float, found: dict[tuple[str, str], float]) -> str:
    """Prometheus text for the Pushgateway (job "evaluation", grouped by model)."""
    lines = ["# TYPE mlp_evaluation_last_run_status gauge",
             f'mlp_evaluation_last_run_status{{model="{model}"}} {STATUS[status]}',
             "# TYPE mlp_evaluation_last_run_duration_seconds gauge",
             f'mlp_evaluation_last_run_duration_seconds{{model="{model}"}} {duration:.0f}',
             "# TYPE mlp_evaluation_last_run_timestamp_seconds gauge",
             f'mlp_evaluation_last_run_timestamp_seconds{{model="{model}"}} {time.time():.0f}']
    if found:
        lines.append("# TYPE mlp_evaluation_score gauge")
        lines += [f'mlp_evaluation_score{{model="{model}",task="{task}",metric="{metric}"}} {value}'
                  for (task, metric), value in sorted(found.items())]
    return "\n".join(lines) + "\n"


def push(pushgateway: str, model: str, text: str) -> None:
    request = urllib.request.Request(f"{pushgateway}/metrics/job/evaluation/model/{model}", data=text.encode(),
                                     method="PUT", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=30):
        pass


def keep(bucket: str, model: str, output: Path) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    s3 = boto3.client("s3")
    for path in output.rglob("*.json"):
        s3.upload_file(str(path), bucket, f"evaluations/{model}/{stamp}/{path.relative_to(output)}")
    return f"s3://{bucket}/evaluations/{model}/{stamp}/"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    for flag in ("--model", "--served-name", "--base-url", "--tokenizer", "--tasks", "--bucket", "--pushgateway"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--limit", type=int, required=True)
    parser.add_argument("--few-shot", type=int, required=True)
    parser.add_argument("--may-be-at-zero", action="store_true", help="the model scales to zero on purpose")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    start = time.monotonic()
    if not healthy(args.base_url):
        status = "skipped" if args.may_be_at_zero else "failed"
        print(f"{args.model}: {args.base_url}/health does not answer: {status}"
              + (" (the model is scaled to zero outside its wake window)" if args.may_be_at_zero else ""))
        push(args.pushgateway, args.model, metrics_text(args.model, status, time.monotonic() - start, {}))
        return 0 if args.may_be_at_zero else 1
    output = Path("/tmp/results")
    done = subprocess.run(lm_eval_command(args, output), check=False)
    found: dict[tuple[str, str], float] = {}
    if done.returncode == 0:
        for path in output.rglob("results_*.json"):
            found.update(scores(json.loads(path.read_text())))
        print(f"{args.model}: results kept at {keep(args.bucket, args.model, output)}")
    status = "succeeded" if done.returncode == 0 and found else "failed"
    push(args.pushgateway, args.model, metrics_text(args.model, status, time.monotonic() - start, found))
    return 0 if status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
