rule parse_skill:
    """Parse and validate SKILL.md + evals.json, and check the skill fits the base model's context;
    spec deviations are warnings unless strict."""
    input:
        spec=spec("parse_skill"),
        model="build/models/base",
    output:
        skill="build/skills/{skill}.json",
        manifest=manifest("parse_skill"),
    benchmark:
        "build/benchmarks/parse_skill/{skill}.tsv"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "{S2L} parse-skill --spec {input.spec} --model {input.model} --out {output.skill} --manifest {output.manifest}"
