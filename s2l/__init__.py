"""s2l: build per-skill LoRA adapters from Agent Skills (Skill-to-LoRA)."""

__version__ = "0.1.0"
