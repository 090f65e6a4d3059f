"""The training data: the generator's requests and the teacher's answers, the form a skill's
examples share, dataset checks, what check-skill reports, a build's cost. Imports the layers
below it (skills, engine, models)."""
