rule merge:
    """The base model with the skill's adapter merged into its weights (merge.enabled: true). Not
    kept in the store: each is the size of the base model, and merging takes seconds."""
    input:
        spec=spec("merge"),
        model=MODEL,
        adapter=ADAPTER,
    output:
        merged=directory(MERGED),
        manifest=manifest("merge"),
    threads: MODEL_THREADS
    resources:
        **resources_of("merge"),
        runtime=30,
    params:
        s2l=S2L,
    log:
        log_of("merge"),
    shell:
        "{params.s2l} merge --spec {input.spec} --model {input.model} --adapter {input.adapter} --out {output.merged}"
        " --manifest {output.manifest} --threads {threads} --log {log}"
