rule train:
    """Rank-16 LoRA adapter (4-bit QLoRA on CUDA, fp32 LoRA on CPU) as a standard PEFT folder."""
    input:
        spec=spec("train"),
        skill="build/skills/{skill}.json",
        dataset="build/datasets/{skill}.jsonl",
        model="build/models/base",
    output:
        adapter=directory("build/adapters/{skill}"),
        # Beside the adapter, not in it: timings differ run to run, the adapter's bytes must not.
        metrics="build/adapters/{skill}.metrics.jsonl",
        manifest=manifest("train"),
    threads: MODEL_THREADS
    benchmark:
        "build/benchmarks/train/{skill}.tsv"
    resources:
        mem_mb=6000,
        runtime=120,
    shell:
        "{S2L} train --spec {input.spec} --skill {input.skill} --dataset {input.dataset}"
        " --model {input.model} --out {output.adapter} --metrics {output.metrics} --manifest {output.manifest} {STORE}"
        " --threads {threads}"
