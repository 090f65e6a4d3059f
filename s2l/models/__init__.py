"""The language models: loading and preparing the base model, chat formatting, the local and
endpoint backends, scoring, decoding held to a skill's checks, the judge, what a serving engine
accepts. Imports s2l.skills and s2l.engine."""
