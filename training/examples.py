"""The job's examples: records loaded and checked, shuffled, split, and rendered with the served prompt.

An example that cannot be rendered soundly (its answer would leak through the example store, or it names a
table the context-fitted schema leaves out) is left out and counted by reason, and the job says so; a bad
line in the data file stops the job before this (training/records.py).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from deployments.schema_resolver import SchemaResolver
from text2sql.pipeline.settings import ModelProfile
from training.config import TrainingConfig
from training.records import TrainingRecord, load_records
from training.render import RenderError, render_example


@dataclass
class Examples:
    train: list[dict]
    held_out: list[dict]
    held_out_records: list[TrainingRecord]
    dropped: int = 0
    dropped_reasons: Counter = field(default_factory=Counter)

    def dropped_summary(self) -> str:
        if not self.dropped:
            return "none left out"
        reasons = "; ".join(f"{count} x {reason}" for reason, count in self.dropped_reasons.most_common(3))
        return f"{self.dropped} left out: {reasons}"


def model_profile(config: TrainingConfig) -> ModelProfile:
    """The served model's profile, as far as rendering goes: its template."""
    return ModelProfile(name=config.name, prompt_template=config.prompt_template)


def split_records(config: TrainingConfig) -> tuple[list[TrainingRecord], list[TrainingRecord]]:
    """(train, held out): shuffled with the seed, cut to `limit`, and `eval_fraction` held out unless `eval` is set."""
    data = config.data
    records = load_records(data.train, databases=data.databases)
    random.Random(config.optim.seed).shuffle(records)
    if data.eval is not None:
        held_out = load_records(data.eval, databases=data.databases)
    else:
        count = round(len(records) * data.eval_fraction)
        held_out, records = records[:count], records[count:]
    if data.limit is not None:
        records = records[: data.limit]
    return records, held_out


def load_examples(config: TrainingConfig) -> Examples:
    train_records, held_out_records = split_records(config)
    resolver = SchemaResolver(config.data.databases, config.pipeline)
    profile = model_profile(config)
    examples = Examples(train=[], held_out=[], held_out_records=[])
    for records, rows, kept in (
        (train_records, examples.train, None),
        (held_out_records, examples.held_out, examples.held_out_records),
    ):
        for record in records:
            try:
                rows.append(
                    render_example(
                        record, model=profile, resolver=resolver, settings=config.pipeline,
                        context_length=config.context_length,
                    )
                )
            except RenderError as e:
                examples.dropped += 1
                examples.dropped_reasons[str(e).split(":")[0]] += 1
                continue
            if kept is not None:
                kept.append(record)
    if not examples.train:
        raise ValueError(f"no training example could be rendered ({examples.dropped_summary()})")
    return examples
