"""Progress every N steps, in the job's log (`ray job logs`): loss, tokens per second and the time left; and a
checkpoint at the last step."""

from __future__ import annotations

import logging
import time

from transformers import TrainerCallback

logger = logging.getLogger("training")


class ProgressCallback(TrainerCallback):
    """Logged by the first worker only; transformers' own progress bar still shows in a terminal."""

    def __init__(self, every_steps: int) -> None:
        self.every_steps = every_steps
        self._last: tuple[float, int, int] | None = None  # (time, step, tokens seen)

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = (time.monotonic(), state.global_step, state.num_input_tokens_seen)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_save = True  # the last step is always a checkpoint, so a longer run can resume from it
        if not state.is_world_process_zero or state.global_step % self.every_steps or self._last is None:
            return
        now, tokens = time.monotonic(), state.num_input_tokens_seen
        last_time, last_step, last_tokens = self._last
        seconds_per_step = (now - last_time) / max(state.global_step - last_step, 1)
        tokens_per_s = (tokens - last_tokens) / max(now - last_time, 1e-9)
        losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
        remaining = max(state.max_steps - state.global_step, 0) * seconds_per_step
        logger.info(
            "step %d/%d  loss %s  %.0f tokens/s  %.1f s/step  ETA %s",
            state.global_step, state.max_steps, f"{losses[-1]:.4f}" if losses else "-", tokens_per_s,
            seconds_per_step, _clock(remaining),
        )
        self._last = (now, state.global_step, tokens)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"
