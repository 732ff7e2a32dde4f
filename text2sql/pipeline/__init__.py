"""Question -> checked SQL, as a pure library over the engine protocol: serving, evaluation and training share it."""
