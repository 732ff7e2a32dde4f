from dataclasses import dataclass


@dataclass
class StructuredOutputsConfig:
    backend: str = "auto"
