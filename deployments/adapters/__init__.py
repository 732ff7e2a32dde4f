"""LoRA adapters served by name on their base model's deployment: the catalogue, its Serve deployment, and
what each model replica keeps loaded (Serve's model multiplexing)."""
