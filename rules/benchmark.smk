rule benchmark:
    """One row per skill, the three conditions side by side, win counts and token savings."""
    input:
        expand("build/eval/{skill}.json", skill=SKILLS),
    output:
        BENCHMARK,
    benchmark:
        "build/benchmarks/benchmark.tsv"
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "{S2L} benchmark --out-prefix build/benchmark {input}"
