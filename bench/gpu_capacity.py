"""GPU capacity on paper: how many Text-to-SQL questions per second one GPU could answer on vLLM, estimated from
published vLLM measurements of models of the same size. Nothing here ran on a GPU: these machines have none.

    .venv/bin/python -m bench.gpu_capacity

The estimate: a question costs its answer's decode (the median answer of our 1.5B on the Chinook set, counted
with the model's own tokenizer, plus the end-of-turn token) and the prefill of its question, since vLLM's prefix
caching (`enable_prefix_caching`, on in `configs/gpu-vllm.yaml`) keeps the schema prefix that every question on a
database shares. Published figures report output tokens/s at a fixed concurrency with fixed prompt and answer
lengths; answers/s = output tokens/s / answer tokens. The published prompts (256 to 1,024 tokens) are longer than a
question's uncached tail (a few dozen tokens), so the prefill share is over-counted: the estimates lean low.
Writes bench/results/gpu-capacity.json and the `gpu-capacity` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass

from bench.paths import RESULTS_DIR
from bench.report import publish
from deployments.embedded_models import ensure_embedded_model

ANSWERS = RESULTS_DIR / "accuracy" / "qwen2.5-coder-1.5b__chinook__default__75.jsonl"


@dataclass(frozen=True)
class PublishedRun:
    gpu: str
    model: str
    served_here_as: str  # which of our configs the figure stands in for
    vllm: str
    shape: str  # input / output tokens per request
    concurrency: int
    output_tokens_per_s: float
    source: str


# Third-party measurements as published (tokens/s of output, all requests together).
PUBLISHED = (
    PublishedRun("1x A100 40GB", "Llama-3.1-8B-Instruct, BF16", "XiYanSQL-QwenCoder-7B / llama-3-sqlcoder-8b", "0.23.0",
                 "1024 / 128", 1, 75, "https://johnmusgrave.com/p/vllm-throughput-latency-sweep-on"),
    PublishedRun("1x A100 40GB", "Llama-3.1-8B-Instruct, BF16", "XiYanSQL-QwenCoder-7B / llama-3-sqlcoder-8b", "0.23.0",
                 "1024 / 128", 8, 75 * 6.6, "https://johnmusgrave.com/p/vllm-throughput-latency-sweep-on"),
    PublishedRun("1x H100 80GB", "Llama-3.1-8B-Instruct, FP16", "XiYanSQL-QwenCoder-7B / llama-3-sqlcoder-8b", "0.21.0",
                 "chatbot-short", 1, 122.2, "https://yobitelcomm.github.io/bench/recipes/concurrency-sweep/"),
    PublishedRun("1x H100 80GB", "Llama-3.1-8B-Instruct, FP16", "XiYanSQL-QwenCoder-7B / llama-3-sqlcoder-8b", "0.21.0",
                 "chatbot-short", 16, 1384.2, "https://yobitelcomm.github.io/bench/recipes/concurrency-sweep/"),
    PublishedRun("1x L4 24GB", "Qwen2.5-0.5B-Instruct, BF16", "qwen2.5-coder-0.5b", "0.23.0",
                 "256 / 128", 1, 168, "https://ai.wmx.dev/benchmarks"),
    PublishedRun("1x L4 24GB", "Qwen2.5-0.5B-Instruct, BF16", "qwen2.5-coder-0.5b", "0.23.0",
                 "256 / 128", 32, 3773, "https://ai.wmx.dev/benchmarks"),
)  # fmt: skip


def answer_tokens() -> dict:
    """Tokens in the 1.5B's answers on the Chinook set, by the model's own tokenizer (its GGUF's vocabulary)."""
    from llama_cpp import Llama

    vocabulary = Llama(model_path=str(ensure_embedded_model("qwen2.5-coder-1.5b")), vocab_only=True, verbose=False)
    answers = [json.loads(line)["sql"] for line in ANSWERS.read_text().splitlines() if line.strip()]
    counts = [len(vocabulary.tokenize(sql.encode(), add_bos=False)) + 1 for sql in answers if sql]  # + end of turn
    return {"answers": len(counts), "median": statistics.median(counts), "p90": sorted(counts)[int(0.9 * (len(counts) - 1))]}


def estimate(run: PublishedRun, tokens_per_answer: float) -> dict:
    answers_per_s = run.output_tokens_per_s / tokens_per_answer
    return {**asdict(run), "answers_per_s": answers_per_s, "seconds_per_answer_at_this_concurrency": run.concurrency / answers_per_s}


def render(result: dict) -> str:
    tokens = result["answer_tokens"]
    lines = [
        "**Estimates on paper, not measurements**: no GPU ran here. Each row takes a published vLLM figure for a "
        "model of the size we would serve and divides its output tokens/s by the tokens of one SQL answer: the "
        f"median of our 1.5B's {tokens['answers']} answers on the Chinook set, {tokens['median']:.0f} tokens "
        f"(p90 {tokens['p90']}), counted with the model's tokenizer. The schema prefix is served from vLLM's prefix "
        "cache, so a question's own prefill is a few dozen tokens, shorter than the published prompts: the "
        "estimates lean low. `python -m bench.gpu_capacity` writes this table.",
        "",
        "| GPU | published model (stands in for) | vLLM | in / out tokens | concurrency | output tokens/s | SQL answers/s (estimate) | seconds per answer (estimate) | source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["estimates"]:
        lines.append(
            f"| {row['gpu']} | {row['model']} ({row['served_here_as']}) | {row['vllm']} | {row['shape']} | "
            f"{row['concurrency']} | {row['output_tokens_per_s']:.0f} | {row['answers_per_s']:.1f} | "
            f"{row['seconds_per_answer_at_this_concurrency']:.2f} s | {row['source']} |"
        )
    return "\n".join(lines)


def main() -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    tokens = answer_tokens()
    result = {
        "answer_tokens": tokens,
        "estimates": [estimate(run, tokens["median"]) for run in PUBLISHED],
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    publish("gpu-capacity", result, render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
