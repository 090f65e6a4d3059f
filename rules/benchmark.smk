rule benchmark:
    """One row per skill, the conditions side by side, win counts, control gaps and token savings."""
    input:
        spec=str(spec_path("benchmark")),
        reports=expand(EVAL_REPORT, skill=SKILLS),
        controls=expand(CONTROLS_REPORT, skill=SKILLS) if CONTROLS else [],
        usage=expand(USAGE, skill=SKILLS),
    output:
        json=BENCHMARK_JSON,
        markdown=report(BENCHMARK_MARKDOWN, caption="../report/benchmark.rst", category="Benchmark"),
        plot=report(BENCHMARK_PLOT, caption="../report/plot.rst", category="Benchmark"),
        manifest=str(manifest_path("benchmark")),
    benchmark:
        benchmark_of("benchmark")
    resources:
        **resources_of("benchmark"),
        mem_mb=1000,
        runtime=5,
    params:
        s2l=S2L,
        store=STORE,
        prefix=lambda wildcards, output: output.json.removesuffix(".json"),
    log:
        log_of("benchmark"),
    shell:
        "{params.s2l} benchmark --spec {input.spec} --out-prefix {params.prefix} --manifest {output.manifest}"
        " {params.store} {input.reports} --usage {input.usage} --controls {input.controls} --log {log}"
