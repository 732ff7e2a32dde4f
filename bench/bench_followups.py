"""Follow-up accuracy through the running Serve app: does a model answer "only the ones from Canada" better
when it is shown the conversation so far?

    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_followups                       # both embedded models
    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_followups --models qwen2.5-coder-0.5b --limit 2  # smoke
    .venv/bin/python -m bench.bench_followups --url http://127.0.0.1:8000   # an app already running (serve run ...)

Every turn of every conversation in bench/data/chinook_conversations.jsonl (checked by
bench/check_chinook_conversations.py) goes through POST /v1/sql/generate with `database: chinook` and
`execute: true`, and the returned rows are compared with the gold query's rows (bench_accuracy's scoring,
sql-eval's rules). Each follow-up is asked twice:
  with history   `history: [{"question", "sql"}, ...]` holds the earlier turns with their GOLD SQL, not the
                 model's own answers, so every turn is measured on its own and one miss does not sink the rest
  alone          the same follow-up question with no history, as if it were the first question
  edit           (--compare-edit) with history and `followup_edit: true`, the follow-up put as a change to the
                 previous SQL; `history` then sends `followup_edit: false`, so the two compare whatever the default
The first turn has no history either way; it is asked once and counts for both. Accuracy is reported per turn
index (1st, 2nd, 3rd, 4th turn) and over all follow-ups. The conversations are a benchmark: never train on them.

Writes bench/results/followups.json (one entry per model and conversation count, merged across runs),
per-turn details in bench/results/followups/, and the `followups` section of BENCHMARKS.md. The app it starts
listens on port 8767 (bench_accuracy.py uses 8766), in a Ray instance of its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import threading
import time
from pathlib import Path

import requests

from bench.bench_accuracy import MODELS, GoldCache, database_config, score
from bench.check_chinook_conversations import DEFAULT_CONVERSATIONS, load_conversations, turn_id
from bench.paths import RESULTS_DIR
from bench.report import update_benchmarks_section
from bench.serve_app import run_per_model, start_bench_app, stop_bench_app

logger = logging.getLogger("bench_followups")
PORT = 8767
MODES = ("history", "alone")
EDIT = "edit"
MODE_TITLES = {"history": "with history", EDIT: "with history, as an edit", "alone": "without history"}
ORDINALS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th"}
_results_lock = threading.Lock()


# ---- questions -----------------------------------------------------------------------------------


def conversations(path: Path = DEFAULT_CONVERSATIONS, *, limit: int | None = None) -> list[dict]:
    records, problems = load_conversations(path)
    if problems:
        raise ValueError(f"{path} has malformed lines; run python -m bench.check_chinook_conversations: {problems}")
    if limit and limit < len(records):
        records = sorted(random.Random(1234).sample(records, limit), key=lambda c: c["id"])
    return records


def turn_question(conversation: dict, index: int) -> dict:
    """A turn as bench_accuracy's question dict, so its GoldCache and score apply unchanged."""
    turn = conversation["turns"][index]
    return {
        "id": turn_id(conversation["id"], index), "question": turn["question"], "gold": turn["sql"],
        "database": "chinook", "category": ORDINALS[index + 1], "dialect": "sqlite", "evidence": None,
        "ignore_duplicates": False,
    }


def gold_history(conversation: dict, index: int) -> list[dict]:
    """The turns before `index` with their gold SQL, oldest first: the API's `history` shape."""
    return [{"question": t["question"], "sql": t["sql"]} for t in conversation["turns"][:index]]


# ---- running -------------------------------------------------------------------------------------


def ask(
    base_url: str, model: str, question: dict, history: list[dict], switches: dict | None = None
) -> tuple[dict, float]:
    body = {"question": question["question"], "database": question["database"], "model": model, "execute": True,
            **(switches or {})}
    if history:
        body["history"] = history
    started = time.perf_counter()
    response = requests.post(f"{base_url}/v1/sql/generate", json=body, timeout=900)
    elapsed_ms = (time.perf_counter() - started) * 1000
    try:
        return response.json() | {"status": response.status_code}, elapsed_ms
    except ValueError:
        return {"status": response.status_code, "error": response.text[:300]}, elapsed_ms


def error_text(body: dict) -> str | None:
    error = body.get("error")
    if isinstance(error, dict):  # the OpenAI-shaped error body of a 4xx/5xx
        return error.get("message")
    return error


def mode_switches(mode: str, modes: tuple[str, ...]) -> dict:
    """The request fields of a mode: with an edit mode beside it, `history` pins followup_edit off."""
    if mode == EDIT:
        return {"followup_edit": True}
    return {"followup_edit": False} if mode == "history" and EDIT in modes else {}


def run_conversations(
    base_url: str, model: str, items: list[dict], gold: GoldCache, modes: tuple[str, ...] = MODES
) -> dict:
    details: list[dict] = []
    tallies: dict[int, dict[str, list[int]]] = {}  # turn number -> mode -> [correct, total, http errors]
    latencies: dict[str, list[float]] = {mode: [] for mode in modes}
    warned = False
    for number, conversation in enumerate(items, start=1):
        for index in range(len(conversation["turns"])):
            question = turn_question(conversation, index)
            # The first turn has no history in any mode: ask once, count it for all. Modes take turns, rotating.
            shift = index % len(modes)
            for mode in modes[shift:] + modes[:shift] if index else ("history",):
                history = gold_history(conversation, index) if mode != "alone" else []
                body, elapsed_ms = ask(base_url, model, question, history, mode_switches(mode, modes))
                # The conversations are over Chinook, judged like the Chinook set: by sql-eval's rule.
                correct = score(question, body, gold)["sql-eval"] if body.get("status") == 200 else False
                if history and body.get("status") == 422 and not warned:
                    warned = True
                    logger.warning("%s: the app rejects `history` (422): %s", model, error_text(body))
                for counted in (mode,) if index else modes:
                    tally = tallies.setdefault(index + 1, {}).setdefault(counted, [0, 0, 0])
                    tally[0] += int(correct)
                    tally[1] += 1
                    tally[2] += int(body.get("status") != 200)
                    latencies[counted].append(elapsed_ms)
                details.append({
                    "id": question["id"], "turn": index + 1, "mode": mode if index else "first", "correct": correct,
                    "sql": body.get("sql"), "status": body.get("status"), "error": error_text(body),
                    "history_used": body.get("history_used"), "attempts": len(body.get("attempts") or []),
                    "latency_ms": round(elapsed_ms),
                })
        logger.info("%s: %d/%d conversations", model, number, len(items))
    detail_path = RESULTS_DIR / "followups" / f"{model}.jsonl"
    detail_path.parent.mkdir(parents=True, exist_ok=True)
    detail_path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in details))

    def cell(correct: int, total: int, errors: int) -> dict:
        return {"correct": correct, "total": total, "accuracy": correct / total if total else 0.0, "http_errors": errors}

    turns = {str(n): {mode: cell(*tallies[n][mode]) for mode in modes} for n in sorted(tallies)}
    follow_ups = {
        mode: cell(*(sum(tallies[n][mode][i] for n in tallies if n > 1) for i in range(3))) for mode in modes
    }
    return {
        "model": model, "conversations": len(items), "turns": turns, "follow_ups": follow_ups,
        "median_latency_ms": {mode: statistics.median(v) if v else None for mode, v in latencies.items()},
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def save(result: dict, path: Path) -> None:
    with _results_lock:
        data = json.loads(path.read_text()) if path.exists() else {"runs": []}
        key = (result["model"], result["conversations"])
        data["runs"] = [r for r in data["runs"] if (r["model"], r["conversations"]) != key] + [result]
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        update_benchmarks_section("followups", render_table(data))


def _cell(entry: dict) -> str:
    text = f"{100 * entry['accuracy']:.1f}% ({entry['correct']}/{entry['total']})"
    if entry["http_errors"]:
        text += f", {entry['http_errors']} HTTP errors"
    return text


def render_table(data: dict) -> str:
    lines = [
        "Follow-up accuracy through the running Serve app (`bench/bench_followups.py`), CPU, embedded GGUF models, "
        "on our Chinook conversations (`bench/data/chinook_conversations.jsonl`), default variant "
        "(validation + up to 2 repairs).",
        "*With history* sends the earlier turns with their gold SQL; *as an edit* (`--compare-edit`) sends them with "
        "`followup_edit: true`, the follow-up put as a change to the previous SQL (and *with history* then pins it "
        "off); *without history* asks the same follow-up alone. The 1st turn has no history either way (asked once, "
        "counted in every column); the modes take turns.",
        "",
    ]
    modes = [m for m in ("history", EDIT, "alone") if any(m in run["follow_ups"] for run in data["runs"])]
    lines += ["| model | conversations | turn | " + " | ".join(MODE_TITLES[m] for m in modes) + " | finished |",
              "|---|---|---|" + "---|" * (len(modes) + 1)]
    for run in sorted(data["runs"], key=lambda r: (r["model"], -r["conversations"])):
        rows = [(ORDINALS.get(int(n), n), run["turns"][n]) for n in sorted(run["turns"], key=int)]
        rows.append(("follow-ups (2nd+)", run["follow_ups"]))
        for label, entry in rows:
            cells = " | ".join(_cell(entry[m]) if m in entry else "-" for m in modes)
            lines.append(
                f"| {run['model']} | {run['conversations']} | {label} | {cells} | {run.get('finished_at', '-')[:10]} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--limit", type=int, default=None, help="a fixed random sample of N conversations")
    parser.add_argument("--conversations", type=Path, default=DEFAULT_CONVERSATIONS)
    parser.add_argument("--port", type=int, default=PORT, help="HTTP port of the app this script starts")
    parser.add_argument("--url", default=None, help="use an app already running there (it must serve 'chinook')")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "followups.json")
    parser.add_argument(
        "--compare-edit", action="store_true",
        help="also ask each follow-up with followup_edit: true (mode `edit`), taking turns with `history` (pinned off)",
    )
    args = parser.parse_args()
    modes = (*MODES, EDIT) if args.compare_edit else MODES
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    items = conversations(args.conversations, limit=args.limit)
    databases = database_config(["chinook"])
    gold = GoldCache(databases)
    base_url = args.url.rstrip("/") if args.url else start_bench_app(args.models, databases, port=args.port, name="followups")

    def run_model(model: str) -> None:
        result = run_conversations(base_url, model, items, gold, modes)
        logger.info("DONE %s", json.dumps({k: result[k] for k in ("model", "conversations", "follow_ups")}))
        save(result, args.output)

    try:
        run_per_model(args.models, run_model)
    finally:
        if not args.url:
            stop_bench_app()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
