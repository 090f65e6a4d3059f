rule dataset:
    """Schema-checked, filtered training and held-out records, without the skill text."""
    input:
        spec=spec("dataset"),
        skill=PARSED_SKILL,
        synthetic=SYNTHETIC,
        usage=USAGE,
        model=MODEL,
    output:
        records=DATASET,
        report=DATASET_REPORT,
        manifest=manifest("dataset"),
    benchmark:
        benchmark_of("dataset")
    resources:
        **resources_of("dataset"),
        mem_mb=1000,
        runtime=5,
    params:
        s2l=S2L,
        store=STORE,
    log:
        log_of("dataset"),
    shell:
        "{params.s2l} dataset --spec {input.spec} --skill {input.skill} --synthetic {input.synthetic}"
        " --usage {input.usage}"
        " --model {input.model} --out {output.records} --report {output.report}"
        " --manifest {output.manifest} {params.store} --log {log}"
