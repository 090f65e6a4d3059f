"""What a build measured: the evaluation (no skill, skill in context, adapter, controls), bootstrap
intervals, the aggregate benchmark. Imports every layer below it."""
