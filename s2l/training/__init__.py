"""The adapter: packed LoRA training, checkpoints and resume, per-step metrics, and its model card.
Imports the layers below it (skills, engine, models, data)."""
