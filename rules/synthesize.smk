rule synthesize:
    """Generator requests + teacher answers (full SKILL.md in the teacher's system prompt)."""
    input:
        spec=spec("synthesize"),
        skill=PARSED_SKILL,
        model=MODEL,
    output:
        records=SYNTHETIC,
        usage=USAGE,
        manifest=manifest("synthesize"),
    threads: MODEL_THREADS
    benchmark:
        benchmark_of("synthesize")
    resources:
        **resources_of("synthesize"),
        runtime=60,
    params:
        s2l=S2L,
        store=STORE,
    log:
        log_of("synthesize"),
    shell:
        "{params.s2l} synthesize --spec {input.spec} --skill {input.skill} --model {input.model}"
        " --out {output.records} --usage {output.usage} --manifest {output.manifest} {params.store} --threads {threads} --log {log}"
