rule synthesize:
    """Generator requests + teacher answers (full SKILL.md in the teacher's system prompt)."""
    input:
        spec=spec("synthesize"),
        skill="build/skills/{skill}.json",
        model="build/models/base",
    output:
        records="build/synthetic/{skill}.jsonl",
        usage="build/synthetic/{skill}.usage.json",
        manifest=manifest("synthesize"),
    threads: MODEL_THREADS
    benchmark:
        "build/benchmarks/synthesize/{skill}.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "{S2L} synthesize --spec {input.spec} --skill {input.skill} --model {input.model}"
        " --out {output.records} --usage {output.usage} --manifest {output.manifest} {STORE} --threads {threads}"
