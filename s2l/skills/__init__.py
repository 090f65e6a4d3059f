"""What a skill says: SKILL.md parsing and validation, its worked examples, its machine checks
(evals.json), near-duplicate text. Pure text: imports nothing from the other layers."""
