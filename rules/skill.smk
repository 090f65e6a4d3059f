rule parse_skill:
    """Parse and validate SKILL.md + evals.json, and check the skill fits the base model's context;
    spec deviations are warnings unless strict."""
    input:
        spec=spec("parse_skill"),
        model=MODEL,
    output:
        skill=PARSED_SKILL,
        manifest=manifest("parse_skill"),
    benchmark:
        benchmark_of("parse_skill")
    resources:
        **resources_of("parse_skill"),
        mem_mb=500,
        runtime=5,
    params:
        s2l=S2L,
    log:
        log_of("parse_skill"),
    shell:
        "{params.s2l} parse-skill --spec {input.spec} --model {input.model} --out {output.skill} --manifest {output.manifest} --log {log}"
