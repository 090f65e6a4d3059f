rule benchmark:
    """One row per skill, the conditions side by side, win counts, control gaps and token savings."""
    input:
        spec=str(spec_path("benchmark")),
        reports=expand("build/eval/{skill}.json", skill=SKILLS),
        controls=expand("build/eval/controls/{skill}.json", skill=SKILLS) if CONTROLS else [],
        usage=expand("build/synthetic/{skill}.usage.json", skill=SKILLS),
    output:
        json=BENCHMARK[0],
        markdown=report(BENCHMARK[1], caption="../report/benchmark.rst", category="Benchmark"),
        plot=report(BENCHMARK[2], caption="../report/plot.rst", category="Benchmark"),
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
    log:
        log_of("benchmark"),
    shell:
        "{params.s2l} benchmark --spec {input.spec} --out-prefix build/benchmark --manifest {output.manifest}"
        " {params.store} {input.reports} --usage {input.usage} --controls {input.controls} --log {log}"
