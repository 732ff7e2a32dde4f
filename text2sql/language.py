"""Which language a question is written in, as far as the prompt needs to know: Chinese or not."""

from __future__ import annotations

import re

# CJK Unified Ideographs and Extension A: the Han characters Chinese questions are written in.
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def is_chinese(text: str) -> bool:
    """True when the question is mostly Han characters (an English question quoting one Chinese name is not)."""
    han = len(_HAN.findall(text))
    latin = len(re.findall(r"[A-Za-z]+", text))
    return han >= 2 and han >= latin
