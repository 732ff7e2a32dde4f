"""SPACE-T fine-tuning: ModelScope's table-question-answering trainer as a Ray Train job.

    config.py    the job's strict YAML config
    tables.py    the tables a record is asked over, exported as serving exports them
    records.py   JSONL checked line by line (`path:line: what`), targets read into SPACE-T's structured query
    examples.py  records -> the items ModelScope's trainer takes (its own preprocessor, plus the gold labels)
    worker.py    what the Ray Train worker runs: ModelScope's TableQuestionAnsweringTrainer
    output.py    the fine-tuned model directory that `backend: modelscope_tableqa` loads
    train.py     the CLI: `python -m training.spacet --config <yaml>`
"""
