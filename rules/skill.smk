rule parse_skill:
    """Parse and validate SKILL.md + evals.json; spec deviations are warnings unless strict."""
    input:
        spec=spec("skill"),
    output:
        skill="build/skills/{skill}.json",
        manifest=manifest("skill"),
    benchmark:
        "build/benchmarks/parse_skill/{skill}.tsv"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "{S2L} parse-skill --spec {input.spec} --out {output.skill} --manifest {output.manifest}"
